// The CLI's stage reporter: the ETA comes from the rate since a stage's first report, so
// work done before the first step does not count as that step's time.
import { consoleReporter } from '../lib/cli/console-reporter';
import { Stage } from '../lib/run/stages';

function fakeStream(): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  const stream = { isTTY: true, columns: 200, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
  return { stream, lines };
}

afterEach(() => jest.useRealTimers());

test('the ETA ignores the time before the first report: 100 s of calibration, then 1 s a step', () => {
  jest.useFakeTimers({ now: 0 });
  const { stream, lines } = fakeStream();
  const r = consoleReporter(stream);
  r.start(Stage.Quantize, 'w4a4');
  jest.setSystemTime(100_000); // calibration before the first reconstruction step
  r.progress(Stage.Quantize, 1, 101, 'blocks.0');
  expect(lines[lines.length - 1]).toContain('ETA --'); // no rate yet: no guess of 100 s × 100 steps
  jest.setSystemTime(110_000); // ten more steps, 1 s each
  r.progress(Stage.Quantize, 11, 101, 'blocks.0');
  expect(lines[lines.length - 1]).toContain('ETA 1m30s'); // 90 steps left at 1 s
  // A new stage measures its own rate.
  r.done(Stage.Quantize, 'ok');
  r.start(Stage.Evaluate, '');
  jest.setSystemTime(200_000);
  r.progress(Stage.Evaluate, 5, 10, '');
  expect(lines[lines.length - 1]).toContain('ETA --');
  jest.setSystemTime(202_000);
  r.progress(Stage.Evaluate, 6, 10, '');
  expect(lines[lines.length - 1]).toContain('ETA 8s');
});
