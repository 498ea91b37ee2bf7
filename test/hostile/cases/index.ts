// Every case of the corpus, family by family.
import type { HostileCase } from '../corpus.js';
import { archiveCases } from './archives.js';
import { authCases } from './auth.js';
import { edgeCases } from './edge.js';
import { httpCases } from './http.js';
import { policyCases } from './policies.js';
import { trainerCases } from './trainers.js';
import { uploadCases } from './uploads.js';
import { websocketCases } from './websocket.js';

export function allCases(): HostileCase[] {
  return [
    ...uploadCases(),
    ...archiveCases(),
    ...policyCases(),
    ...trainerCases(),
    ...httpCases(),
    ...authCases(),
    ...edgeCases(),
    ...websocketCases(),
  ];
}
