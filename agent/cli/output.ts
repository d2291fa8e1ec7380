/**
 * Command output on stdout. A reader that goes away (`premortem list | head`)
 * ends the command quietly with status 141, as a Unix tool killed by SIGPIPE
 * would (Node ignores SIGPIPE, so EPIPE arrives as an error instead).
 */
import { EXIT } from './spec';

const isBrokenPipe = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';

let installed = false;

/** Once per process: a closed stdout exits quietly instead of throwing an unhandled 'error'. */
export function exitQuietlyOnBrokenPipe(stream: NodeJS.WriteStream = process.stdout): void {
  if (installed) return;
  installed = true;
  stream.on('error', (e) => {
    if (isBrokenPipe(e)) process.exit(EXIT.brokenPipe);
    process.stderr.write(`premortem: cannot write the output: ${(e as Error).message}\n`);
    process.exit(EXIT.failure);
  });
}

/** Writes to stdout and resolves once the data is handed to the kernel. */
export function writeOut(data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => {
      if (!err) return resolve();
      if (isBrokenPipe(err)) process.exit(EXIT.brokenPipe);
      reject(err);
    });
  });
}
