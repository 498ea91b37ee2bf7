import { useEffect, useRef } from 'preact/hooks';
import {
  allPages,
  api,
  enc,
  request,
  type Dataset,
  type Evaluation,
  type LeaderboardEntry,
  type Policy,
  type Trainer,
  type Training,
  type TrainingMetrics,
} from '../api';
import { MetricPlot } from '../training/metric-plot';
import { Badge, formatDate, formatNumber, InlineError, Loading, useLoad, usePolled, EvaluationStatusCell } from '../ui';

/** How often a page showing a run (or its evaluations) still in progress asks again. */
const POLL_MS = 2000;

const ended = (status: Training['status']) => status === 'succeeded' || status === 'failed' || status === 'cancelled';

/** The caller's training runs (every run for admins), newest first. */
export function TrainingsPage() {
  const loaded = useLoad(
    () =>
      Promise.all([
        allPages<Training>('/v1/trainings'),
        // Only for the trainers' names: the runs are listed without them if this fails.
        allPages<Trainer>('/v1/trainers').catch(() => [] as Trainer[]),
      ]),
    [],
  );
  return (
    <section>
      <h1>Trainings</h1>
      <Loading loaded={loaded} what="training runs">
        {([trainings, trainers]) => {
          const trainerNames = new Map(trainers.map((trainer) => [trainer.id, trainer.name]));
          const newestFirst = [...trainings].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
          return newestFirst.length === 0 ? (
            <p class="empty">This caller has no training runs (POST /v1/trainings starts one; see the API docs).</p>
          ) : (
            <table class="data" data-testid="trainings-table">
              <thead>
                <tr>
                  <th>training</th>
                  <th>trainer</th>
                  <th>status</th>
                  <th class="num">steps</th>
                  <th class="num">latest loss</th>
                  <th>created</th>
                </tr>
              </thead>
              <tbody>
                {newestFirst.map((training) => (
                  <tr key={training.id}>
                    <td>
                      <a href={`/trainings/${enc(training.id)}`}>
                        <code>{training.id}</code>
                      </a>
                    </td>
                    <td>{trainerNames.get(training.trainerId) ?? <code>{training.trainerId}</code>}</td>
                    <td>
                      <Badge kind={training.status}>{training.status}</Badge>
                    </td>
                    <td class="num">{formatNumber(training.stepCount)}</td>
                    <td class="num">{formatNumber(training.latestMetrics.loss)}</td>
                    <td>{formatDate(training.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          );
        }}
      </Loading>
    </section>
  );
}

interface Progress {
  training: Training;
  metrics: TrainingMetrics;
}

/** One run: its status and metrics (live until it ends), lineage, outcome and log. */
export function TrainingPage(props: { trainingId: string }) {
  const { trainingId } = props;
  const { loaded, refreshError } = usePolled<Progress>(
    async () => {
      // The run first, then its metrics: once the run says it ended, the metrics read after it are complete.
      const training = await api<Training>(`/v1/trainings/${enc(trainingId)}`);
      const metrics = await api<TrainingMetrics>(`/v1/trainings/${enc(trainingId)}/metrics`);
      return { training, metrics };
    },
    ({ training }) => ended(training.status),
    POLL_MS,
    [trainingId],
  );
  return (
    <Loading loaded={loaded} what="the training run">
      {({ training, metrics }) => (
        <>
          <section>
            <p class="crumbs">
              <a href="/trainings">Trainings</a> /
            </p>
            <h1>
              Training <code data-testid="training-id">{training.id}</code>
            </h1>
            <p class="facts">
              <span data-testid="training-status">
                <Badge kind={training.status}>{training.status}</Badge>
              </span>
              {training.dryRun ? (
                <>
                  {' '}
                  <Badge kind="dry-run">dry run</Badge>
                </>
              ) : null}{' '}
              · {formatNumber(training.episodeCount)} episodes · {formatNumber(training.stepCount)} steps · created{' '}
              {formatDate(training.createdAt)} · started {formatDate(training.startedAt)} · ended {formatDate(training.finishedAt)}
            </p>
            {ended(training.status) ? null : <p class="sub">In progress: refreshed every {POLL_MS / 1000} s.</p>}
            {refreshError ? <InlineError error={refreshError} note="The last refresh failed; trying again." /> : null}
            {training.error ? (
              <div class="inline-error" data-testid="training-error">
                <p>
                  <code>{training.error.code}</code> {training.error.message}
                </p>
              </div>
            ) : null}
          </section>
          <MetricsSection metrics={metrics} running={!ended(training.status)} />
          <LineageSection training={training} />
          {training.policyId ? <OutcomeSection training={training} policyId={training.policyId} /> : null}
          <LogSection training={training} />
        </>
      )}
    </Loading>
  );
}

function MetricsSection({ metrics, running }: { metrics: TrainingMetrics; running: boolean }) {
  const names = Object.keys(metrics.series);
  // The loss first: it is what a run is watched for; the rest in the order the trainer first printed them.
  const ordered = names.includes('loss') ? ['loss', ...names.filter((name) => name !== 'loss')] : names;
  return (
    <section>
      <h2>Metrics</h2>
      {ordered.length === 0 ? (
        <p class="empty">
          {running ? 'No metrics yet' : 'The trainer printed no metrics'} (stdout lines such as <code>{'{"step": 10, "loss": 0.5}'}</code>).
        </p>
      ) : null}
      {metrics.truncated ? <p class="sub">Some series or points were past the caps and were dropped.</p> : null}
      <div class="plots">
        {ordered.map((name, index) => (
          <MetricChart key={name} name={name} index={index} points={metrics.series[name]!} />
        ))}
      </div>
    </section>
  );
}

function MetricChart(props: { name: string; index: number; points: Array<[number, number]> }) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<MetricPlot | null>(null);
  // Made once per series; the points of later refreshes go to the same plot.
  useEffect(() => {
    const made = new MetricPlot(container.current!, props.name, props.index, props.points);
    plot.current = made;
    return () => {
      made.dispose();
      plot.current = null;
    };
  }, [props.name]);
  useEffect(() => plot.current?.update(props.points), [props.points]);
  const latest = props.points[props.points.length - 1];
  return (
    <div class="plot">
      <h3>
        <code>{props.name}</code>{' '}
        <span class="sub">
          ({formatNumber(props.points.length)} points
          {latest ? `, latest ${formatNumber(latest[1])} at step ${formatNumber(latest[0])}` : ''})
        </span>
      </h3>
      <div ref={container} data-testid="metric-plot" data-name={props.name} />
    </div>
  );
}

/** What the run was made of: its trainer, sources as pinned, hyperparameters and limits. */
function LineageSection({ training }: { training: Training }) {
  // A source's dataset name, or its id alone when the caller may not see the dataset any more.
  const loaded = useLoad(
    () =>
      Promise.all([
        api<Trainer>(`/v1/trainers/${enc(training.trainerId)}`).catch(() => null),
        Promise.all(training.sources.map((source) => api<Dataset>(`/v1/datasets/${enc(source.datasetId)}`).catch(() => null))),
      ]),
    [training.id],
  );
  const trainer = loaded.state === 'ok' ? loaded.value[0] : null;
  const datasets = loaded.state === 'ok' ? loaded.value[1] : [];
  const { resources } = training;
  return (
    <section data-testid="lineage">
      <h2>Lineage</h2>
      <p class="facts" data-testid="lineage-trainer">
        trainer {trainer?.name ? <strong>{trainer.name}</strong> : null} <code>{training.trainerId}</code>
        {trainer?.manifest ? (
          <>
            {' '}
            · entry <code>{trainer.manifest.entry}</code> · features {trainer.manifest.features.join(', ')}
          </>
        ) : null}
      </p>
      <table class="data compact" data-testid="sources-table">
        <thead>
          <tr>
            <th>dataset</th>
            <th class="num">version</th>
            <th class="num">weight</th>
            <th class="num">episodes</th>
            <th class="num">steps</th>
            <th class="num">beyond the caller’s access</th>
          </tr>
        </thead>
        <tbody>
          {training.sources.map((source, index) => (
            <tr key={source.datasetId}>
              <td>
                <a href={`/datasets/${enc(source.datasetId)}`}>{datasets[index]?.name ?? source.datasetId}</a>
              </td>
              <td class="num">{source.version}</td>
              <td class="num">{formatNumber(source.weight)}</td>
              <td class="num">{formatNumber(source.episodes)}</td>
              <td class="num">{formatNumber(source.steps)}</td>
              <td class="num">{formatNumber(source.beyondAccess)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {training.beyondAccessEpisodes > 0 ? (
        <p class="sub">
          {formatNumber(training.beyondAccessEpisodes)} of its {formatNumber(training.episodeCount)} episodes are beyond this caller’s
          access: its log is guarded.
        </p>
      ) : null}
      <h3>Hyperparameters</h3>
      {Object.keys(training.hyperparameters).length === 0 ? (
        <p class="empty">None (the trainer’s defaults).</p>
      ) : (
        <pre class="json" data-testid="hyperparameters">
          {JSON.stringify(training.hyperparameters, null, 2)}
        </pre>
      )}
      <h3>Resources</h3>
      <p class="facts" data-testid="resources">
        {formatNumber(resources.cpuSeconds)} CPU s · {formatNumber(resources.memoryMb)} MB memory · {formatNumber(resources.wallSeconds)} s
        wall clock
      </p>
    </section>
  );
}

interface Outcome {
  policy: Policy | null;
  evaluations: Evaluation[];
  /** Per source dataset: the policy's entry on its leaderboard, null when it is not (yet) on it, or the failure. */
  places: Array<{ datasetId: string; entry: LeaderboardEntry | null; of: number } | { datasetId: string; error: true }>;
}

const evaluationEnded = (evaluation: Evaluation) => evaluation.status === 'completed' || evaluation.status === 'failed';

/** The policy a succeeded run registered, its evaluations (live until they end) and its leaderboard places. */
function OutcomeSection({ training, policyId }: { training: Training; policyId: string }) {
  const { loaded, refreshError } = usePolled<Outcome>(
    async () => {
      const [policy, evaluations] = await Promise.all([
        api<Policy>(`/v1/policies/${enc(policyId)}`).catch(() => null),
        Promise.all(training.evaluationIds.map((id) => api<Evaluation>(`/v1/evaluations/${enc(id)}`))),
      ]);
      const datasetIds = [...new Set(training.sources.map((source) => source.datasetId))];
      const places = await Promise.all(
        datasetIds.map((datasetId) =>
          api<{ items: LeaderboardEntry[] }>(`/v1/datasets/${enc(datasetId)}/leaderboard`).then(
            (board) => ({ datasetId, entry: board.items.find((item) => item.policyId === policyId) ?? null, of: board.items.length }),
            () => ({ datasetId, error: true as const }),
          ),
        ),
      );
      return { policy, evaluations, places };
    },
    // The board changes as the evaluations end: both are asked again until they have. The run links
    // its policy before it validates it and queues the evaluations, so a run still going is not settled.
    (outcome) => training.finishedAt !== null && outcome.policy?.status !== 'validating' && outcome.evaluations.every(evaluationEnded),
    POLL_MS,
    [training.id, policyId, training.finishedAt, training.evaluationIds.join(',')],
  );
  return (
    <section data-testid="outcome">
      <h2>Policy</h2>
      {loaded.state === 'loading' ? <p class="loading">Loading…</p> : null}
      {loaded.state === 'error' ? <InlineError error={loaded.error} /> : null}
      {refreshError ? <InlineError error={refreshError} note="The last refresh failed; trying again." /> : null}
      {loaded.state === 'ok' ? (
        <>
          <p class="facts">
            registered{' '}
            <a href={`/policies/${enc(policyId)}`} data-testid="policy-link">
              {loaded.value.policy
                ? `${loaded.value.policy.name ?? policyId}${loaded.value.policy.version !== null ? ` v${loaded.value.policy.version}` : ''}`
                : policyId}
            </a>
            {loaded.value.policy ? (
              <>
                {' '}
                <Badge kind={loaded.value.policy.status}>{loaded.value.policy.status}</Badge>
              </>
            ) : null}
          </p>
          <h3>Evaluations on the held-out episodes</h3>
          {loaded.value.evaluations.length === 0 ? (
            <p class="empty">None were queued.</p>
          ) : (
            <table class="data compact" data-testid="training-evaluations">
              <thead>
                <tr>
                  <th>evaluation</th>
                  <th>dataset</th>
                  <th class="num">version</th>
                  <th>status</th>
                  <th class="num">action MSE</th>
                </tr>
              </thead>
              <tbody>
                {loaded.value.evaluations.map((evaluation) => (
                  <tr key={evaluation.id}>
                    <td>
                      <code>{evaluation.id}</code>
                    </td>
                    <td>
                      <a href={`/datasets/${enc(evaluation.datasetId)}`}>{evaluation.datasetId}</a>
                    </td>
                    <td class="num">{evaluation.version}</td>
                    <EvaluationStatusCell status={evaluation.status} error={evaluation.error} />
                    <td class="num">{evaluation.status === 'completed' ? formatNumber(evaluation.metrics?.actionMse) : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>Leaderboards</h3>
          <ul class="places" data-testid="leaderboard-places">
            {loaded.value.places.map((place) => (
              <li key={place.datasetId}>
                <a href={`/datasets/${enc(place.datasetId)}/leaderboard`}>{place.datasetId}</a>:{' '}
                {'error' in place
                  ? 'the leaderboard could not be read'
                  : place.entry
                    ? `rank ${place.entry.rank} of ${place.of} (action MSE ${formatNumber(place.entry.metrics.actionMse)})`
                    : 'not on the board (yet)'}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

/** The log, stored once the run ended; a guarded one holds only metric lines and the tail of the rest. */
function LogSection({ training }: { training: Training }) {
  const done = ended(training.status);
  return (
    <section>
      <h2>Log</h2>
      {done ? <LogText trainingId={training.id} /> : <p class="empty">The log is kept when the run ends.</p>}
    </section>
  );
}

function LogText({ trainingId }: { trainingId: string }) {
  const loaded = useLoad(async () => {
    const response = await request(`/v1/trainings/${enc(trainingId)}/logs`);
    return { guarded: response.headers.get('X-Kura-Log-Guarded') === 'true', text: await response.text() };
  }, [trainingId]);
  if (loaded.state === 'loading') return <p class="loading">Loading the log…</p>;
  if (loaded.state === 'error') return <InlineError error={loaded.error} />;
  return (
    <>
      {loaded.value.guarded ? (
        <p class="sub" data-testid="log-guarded">
          <Badge kind="guarded">guarded</Badge> The run used data beyond its owner’s access: the log keeps only metric lines and the last 4
          KiB of other output.
        </p>
      ) : null}
      {loaded.value.text === '' ? (
        <p class="empty">The run printed nothing.</p>
      ) : (
        <pre class="log" data-testid="training-log">
          {loaded.value.text}
        </pre>
      )}
    </>
  );
}
