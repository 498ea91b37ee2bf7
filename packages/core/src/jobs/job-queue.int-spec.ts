import { randomBytes } from 'node:crypto';
import { BullmqJobQueue } from './bullmq-job-queue.js';
import { InProcessJobQueue } from './in-process-job-queue.js';
import { JOB_QUEUE_CONTRACT_BACKOFF_MS, JOB_QUEUE_CONTRACT_QUEUES, describeJobQueueContract } from './job-queue.contract.js';

describeJobQueueContract('in-process', async () => {
  const queue = new InProcessJobQueue({ backoffMs: JOB_QUEUE_CONTRACT_BACKOFF_MS, queues: JOB_QUEUE_CONTRACT_QUEUES });
  return { queue, cleanup: () => queue.close({ timeoutMs: 1_000 }) };
});

describeJobQueueContract('BullMQ on Redis', async () => {
  // Set by jest's global setup (test/support/global-setup.ts).
  const redisUrl = process.env.KURA_TEST_REDIS_URL;
  if (!redisUrl) throw new Error('KURA_TEST_REDIS_URL is not set: run the tests through jest, whose global setup starts Redis');
  const queue = new BullmqJobQueue({
    redisUrl,
    queueName: `kura-test-${randomBytes(6).toString('hex')}`,
    queues: JOB_QUEUE_CONTRACT_QUEUES,
    backoffMs: JOB_QUEUE_CONTRACT_BACKOFF_MS,
  });
  return {
    queue,
    cleanup: async () => {
      await queue.close({ timeoutMs: 1_000 });
      await queue.obliterate();
    },
  };
});
