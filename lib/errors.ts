// One error type for everything the package throws on purpose, with a stable code that
// scripts can switch on and a message that says what was expected and what was found.

export type SpdfqErrorCode =
  | 'E_CONFIG' // an option or config field out of range
  | 'E_TENSOR' // a tensor of the wrong length or shape
  | 'E_NATIVE' // the addon failed or could not be loaded
  | 'E_MEMORY' // a batch does not fit the memory budget
  | 'E_ONNX' // an unreadable or unsupported ONNX file
  | 'E_CANCELLED' // the caller cancelled long native work
  | 'E_NUMERIC' // NaN / Inf appeared during optimization
  | 'E_IO' // a file or folder could not be read or written
  | 'E_CUDA' // a CUDA runtime call or kernel failed (the message names the call and native/...:line)
  | 'E_STATE'; // a call in the wrong order (backward before forward, a disposed model)

export class SpdfqError extends Error {
  readonly code: SpdfqErrorCode;
  constructor(code: SpdfqErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpdfqError';
    this.code = code;
  }
}
