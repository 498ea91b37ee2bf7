// The jailed half of an ingest (see jailed-conversion.ts): reads one ConversionRequest from stdin,
// converts, reports every step on the message channel and exits. An ImportError is the upload's
// fault (coded); anything else is a bug in Kura or a limit, reported uncoded for the parent to map.
import { ImportError } from '@kura/formats';
import { jailChannel } from '@kura/jail';
import { convertUpload, type ConversionMessage, type ConversionRequest } from './upload-conversion.js';

const send = (message: ConversionMessage) => jailChannel.send(message);

async function main(): Promise<void> {
  jailChannel.exitWithParent();
  for await (const request of jailChannel.messages()) {
    await convertUpload(request as ConversionRequest, send);
    return;
  }
  throw new Error('no conversion request arrived on stdin');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof ImportError) send({ type: 'failed', issue: error.toIssue(), coded: true });
    else {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      send({ type: 'failed', issue: { code: 'INGEST_FAILED', message, location: {} }, coded: false });
      process.stderr.write(`${error instanceof Error ? (error.stack ?? message) : message}\n`);
    }
    process.exit(1);
  },
);
