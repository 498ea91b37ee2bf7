import type { DomainProviders } from '../common/domain.js';
import { EvaluatePolicyJob } from './evaluate-policy.job.js';
import { EvaluationsRepository } from './evaluations.repository.js';
import { EvaluationsService } from './evaluations.service.js';
import { PolicyHosts } from './hosts/policy-hosts.service.js';
import { PoliciesRepository } from './policies.repository.js';
import { PoliciesService } from './policies.service.js';
import { PolicyEvaluationService } from './policy-evaluation.service.js';
import { PolicyLoader } from './policy-loader.service.js';
import { PolicyValidationService } from './policy-validation.service.js';
import { ValidatePolicyJob } from './validate-policy.job.js';

export * from './policies.errors.js';
export * from './policies.service.js';
export * from './evaluations.service.js';

/** Policy bundles, their validation, evaluation on held-out episodes and the jailed hosts that run them. */
export const policiesDomain: DomainProviders = {
  providers: [
    PoliciesRepository,
    PoliciesService,
    PolicyValidationService,
    EvaluationsRepository,
    EvaluationsService,
    PolicyEvaluationService,
    PolicyLoader,
    PolicyHosts,
  ],
  exports: [PoliciesService, EvaluationsService],
  jobHandlers: [ValidatePolicyJob, EvaluatePolicyJob],
};
