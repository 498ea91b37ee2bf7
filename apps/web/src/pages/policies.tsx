import { allPages, api, enc, type Evaluation, type Page, type Policy } from '../api';
import { formatLocation } from '../features';
import { Badge, formatBytes, formatDate, formatNumber, InlineError, Loading, useLoad, EvaluationStatusCell } from '../ui';

/** The policies the caller may see (public ones, and its own). */
export function PoliciesPage() {
  const loaded = useLoad(() => allPages<Policy>('/v1/policies'), []);
  return (
    <section>
      <h1>Policies</h1>
      <Loading loaded={loaded} what="policies">
        {(policies) =>
          policies.length === 0 ? (
            <p class="empty">No policies are visible to this caller.</p>
          ) : (
            <table class="data" data-testid="policies-table">
              <thead>
                <tr>
                  <th>policy</th>
                  <th>status</th>
                  <th>runtime</th>
                  <th>access</th>
                  <th>uploaded</th>
                </tr>
              </thead>
              <tbody>
                {policies.map((policy) => (
                  <tr key={policy.id}>
                    <td>
                      <a href={`/policies/${enc(policy.id)}`}>{policyLabel(policy)}</a>
                    </td>
                    <td>
                      <Badge kind={policy.status}>{policy.status}</Badge>
                    </td>
                    <td>{policy.runtime ?? '—'}</td>
                    <td>{policy.access}</td>
                    <td>{formatDate(policy.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
    </section>
  );
}

const policyLabel = (policy: Policy) => `${policy.name ?? policy.id}${policy.version !== null ? ` v${policy.version}` : ''}`;

/** One policy version: its manifest, validation errors and evaluations. */
export function PolicyPage(props: { policyId: string }) {
  const { policyId } = props;
  const loaded = useLoad(() => api<Policy>(`/v1/policies/${enc(policyId)}`), [policyId]);
  return (
    <Loading loaded={loaded} what="the policy">
      {(policy) => (
        <>
          <section>
            <p class="crumbs">
              <a href="/policies">Policies</a> /
            </p>
            <h1 data-testid="policy-name">{policyLabel(policy)}</h1>
            <p class="facts">
              <Badge kind={policy.status}>{policy.status}</Badge> <code>{policy.id}</code> · runtime {policy.runtime ?? '—'} ·{' '}
              {policy.access} · {formatBytes(policy.bytes)} · uploaded {formatDate(policy.createdAt)}
            </p>
            <p class="sub">
              sha256 <code>{policy.sha256}</code>
            </p>
          </section>
          <section>
            <h2>Validation</h2>
            {policy.errors.length === 0 ? (
              <p>{policy.status === 'validating' ? 'Being validated…' : 'No errors.'}</p>
            ) : (
              <ul class="issues errors" data-testid="policy-errors">
                {policy.errors.map((issue, index) => (
                  <li key={index}>
                    <code>{issue.code}</code> {issue.message}
                    {issue.location ? <div class="location">at {formatLocation(issue.location)}</div> : null}
                  </li>
                ))}
              </ul>
            )}
          </section>
          <section>
            <h2>Manifest</h2>
            {policy.manifest ? (
              <pre class="json">{JSON.stringify(policy.manifest, null, 2)}</pre>
            ) : (
              <p class="empty">No valid policy.json.</p>
            )}
          </section>
          <EvaluationsSection policyId={policy.id} />
        </>
      )}
    </Loading>
  );
}

function EvaluationsSection({ policyId }: { policyId: string }) {
  const loaded = useLoad(() => api<Page<Evaluation>>(`/v1/policies/${enc(policyId)}/evaluations?limit=200`), [policyId]);
  return (
    <section>
      <h2>Evaluations</h2>
      {loaded.state === 'loading' ? <p class="loading">Loading…</p> : null}
      {loaded.state === 'error' ? <InlineError error={loaded.error} /> : null}
      {loaded.state === 'ok' && loaded.value.items.length === 0 ? (
        <p class="empty">Not evaluated yet (on a dataset this caller may see).</p>
      ) : null}
      {loaded.state === 'ok' && loaded.value.items.length > 0 ? (
        <table class="data compact" data-testid="evaluations-table">
          <thead>
            <tr>
              <th>evaluation</th>
              <th>dataset</th>
              <th class="num">version</th>
              <th>status</th>
              <th class="num">action MSE</th>
              <th class="num">action MAE</th>
              <th class="num">episodes</th>
              <th class="num">steps</th>
              <th class="num">latency p50 / p99 (ms)</th>
              <th>finished</th>
            </tr>
          </thead>
          <tbody>
            {loaded.value.items.map((evaluation) => (
              <tr key={evaluation.id}>
                <td>
                  <code>{evaluation.id}</code>
                </td>
                <td>
                  <a href={`/datasets/${enc(evaluation.datasetId)}/leaderboard`}>{evaluation.datasetId}</a>
                </td>
                <td class="num">{evaluation.version}</td>
                <EvaluationStatusCell status={evaluation.status} error={evaluation.error} />
                <td class="num">{formatNumber(evaluation.metrics?.actionMse)}</td>
                <td class="num">{formatNumber(evaluation.metrics?.actionMae)}</td>
                <td class="num">{formatNumber(evaluation.metrics?.episodesEvaluated)}</td>
                <td class="num">{formatNumber(evaluation.metrics?.stepsEvaluated)}</td>
                <td class="num">
                  {evaluation.timing
                    ? `${formatNumber(evaluation.timing.latencyMsP50, 3)} / ${formatNumber(evaluation.timing.latencyMsP99, 3)}`
                    : '—'}
                </td>
                <td>{formatDate(evaluation.finishedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
