import { describe, expect, it } from '@jest/globals';
import { createPrismaClient } from '@kura/core';
import { createTestDatabase } from './database.js';

describe('test infrastructure', () => {
  it('gives each test file a migrated database of its own', async () => {
    const first = await createTestDatabase();
    const second = await createTestDatabase();
    const prismaA = createPrismaClient(first.url);
    const prismaB = createPrismaClient(second.url);
    try {
      await prismaA.apiKey.create({ data: { id: 'key_a', name: 'a', role: 'admin', keyHash: 'x', keyPrefix: 'x' } });
      expect(await prismaA.apiKey.count()).toBe(1);
      expect(await prismaB.apiKey.count()).toBe(0);
    } finally {
      await prismaA.$disconnect();
      await prismaB.$disconnect();
      await first.drop();
      await second.drop();
    }
  });
});
