// The CLI run in this process, as tests drive it: its exit code and what it wrote to stdout
// and stderr (both captured, so a test's output stays clean).

import { main } from '../../lib/cli/main';

export async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}
