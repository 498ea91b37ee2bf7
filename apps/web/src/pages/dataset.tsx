import { useState } from 'preact/hooks';
import {
  api,
  type ApiError,
  enc,
  type Dataset,
  type Earnings,
  type Episode,
  type Feature,
  type Page,
  type Robot,
  type Stats,
  type Terms,
  type Upload,
} from '../api';
import { componentNames, formatLocation, isNumeric, sortedFeatures } from '../features';
import { asApiError, Badge, formatBytes, formatDate, formatNumber, InlineError, Loading, useLoad } from '../ui';

/** A dataset: its robot and body model, feature spec, statistics, episodes (filtered) and upload history. */
export function DatasetPage(props: { datasetId: string }) {
  const { datasetId } = props;
  const loaded = useLoad(() => api<Dataset>(`/v1/datasets/${enc(datasetId)}`), [datasetId]);
  return (
    <Loading loaded={loaded} what="the dataset">
      {(dataset) => (
        <>
          <section class="dataset-head">
            <p class="crumbs">
              <a href="/datasets">Datasets</a> /
            </p>
            <h1 data-testid="dataset-name">{dataset.name}</h1>
            <p class="facts">
              <Badge kind={dataset.access}>{dataset.access}</Badge> <code>{dataset.id}</code> · {formatNumber(dataset.episodeCount)}{' '}
              episodes · {formatNumber(dataset.stepCount)} steps · version {dataset.latestVersion || '—'} · license {dataset.license ?? '—'}{' '}
              · <a href={`/datasets/${enc(dataset.id)}/leaderboard`}>leaderboard</a>
            </p>
            {dataset.description ? <p>{dataset.description}</p> : null}
          </section>
          <RobotSection robotId={dataset.robotId} />
          <FeaturesSection dataset={dataset} />
          <StatsSection dataset={dataset} />
          <EpisodesSection dataset={dataset} />
          <TermsSection datasetId={dataset.id} />
          <UploadsSection datasetId={dataset.id} />
        </>
      )}
    </Loading>
  );
}

function RobotSection(props: { robotId: string }) {
  const loaded = useLoad(() => api<Robot>(`/v1/robots/${enc(props.robotId)}`), [props.robotId]);
  return (
    <section>
      <h2>Robot</h2>
      {loaded.state === 'loading' ? <p class="loading">Loading…</p> : null}
      {loaded.state === 'error' ? <InlineError error={loaded.error} /> : null}
      {loaded.state === 'ok' ? <RobotDetails robot={loaded.value} /> : null}
    </section>
  );
}

function RobotDetails({ robot }: { robot: Robot }) {
  return (
    <div data-testid="robot">
      <p class="facts">
        <strong>{robot.name}</strong> · type <code>{robot.robotType}</code> · {robot.controlFrequencyHz} Hz · action space{' '}
        <code>{robot.actionSpace}</code>
        {robot.stateSpace ? (
          <>
            {' '}
            · state space <code>{robot.stateSpace}</code>
          </>
        ) : null}
      </p>
      {robot.jointNames.length > 0 ? <p>Joints: {robot.jointNames.join(', ')}</p> : null}
      {robot.cameras.length > 0 ? (
        <p>Cameras: {robot.cameras.map((camera) => (typeof camera === 'string' ? camera : JSON.stringify(camera))).join(', ')}</p>
      ) : null}
      <h3>Body model</h3>
      {robot.bodyModel ? (
        <>
          <p>
            {robot.bodyModel.format.toUpperCase()} <code>{robot.bodyModel.robotName}</code>: {robot.bodyModel.joints.length} joints,{' '}
            {robot.bodyModel.links.length} links · <a href={`/v1/robots/${enc(robot.id)}/body-model`}>download</a>
          </p>
          <table class="data compact" data-testid="body-model-joints">
            <thead>
              <tr>
                <th>joint</th>
                <th>type</th>
                <th>parent → child</th>
                <th>limits</th>
              </tr>
            </thead>
            <tbody>
              {robot.bodyModel.joints.map((joint) => (
                <tr key={joint.name}>
                  <td>{joint.name}</td>
                  <td>{joint.type}</td>
                  <td>{joint.parent && joint.child ? `${joint.parent} → ${joint.child}` : '—'}</td>
                  <td>
                    {joint.limits
                      ? Object.entries(joint.limits)
                          .map(([key, value]) => `${key} ${formatNumber(value)}`)
                          .join(', ')
                      : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : (
        <p class="empty">No body model (URDF) registered for this robot.</p>
      )}
    </div>
  );
}

function FeaturesSection({ dataset }: { dataset: Dataset }) {
  const features = sortedFeatures(dataset.features);
  return (
    <section>
      <h2>Features</h2>
      {features.length === 0 ? (
        <p class="empty">No feature spec yet: the first upload sets it.</p>
      ) : (
        <table class="data compact" data-testid="features-table">
          <thead>
            <tr>
              <th>feature</th>
              <th>dtype</th>
              <th>shape</th>
              <th>encoding</th>
              <th>names</th>
            </tr>
          </thead>
          <tbody>
            {features.map(([name, feature]) => (
              <tr key={name}>
                <td>
                  <code>{name}</code>
                </td>
                <td>{feature.dtype}</td>
                <td>[{feature.shape.join(', ')}]</td>
                <td>{feature.encoding ?? ''}</td>
                <td class="names">{feature.names ? componentNames(name, feature).join(', ') : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const statColumns = ['min', 'max', 'mean', 'std', 'q01', 'q50', 'q99'] as const;

function StatsSection({ dataset }: { dataset: Dataset }) {
  const loaded = useLoad(
    () => (dataset.latestVersion > 0 ? api<Stats>(`/v1/datasets/${enc(dataset.id)}/stats`) : Promise.resolve(null)),
    [dataset.id],
  );
  return (
    <section>
      <h2>Statistics</h2>
      {loaded.state === 'loading' ? <p class="loading">Loading…</p> : null}
      {loaded.state === 'error' ? <InlineError error={loaded.error} /> : null}
      {loaded.state === 'ok' && loaded.value === null ? <p class="empty">No published version yet.</p> : null}
      {loaded.state === 'ok' && loaded.value !== null ? <StatsTable dataset={dataset} stats={loaded.value} /> : null}
    </section>
  );
}

function StatsTable({ dataset, stats }: { dataset: Dataset; stats: Stats }) {
  const features = sortedFeatures(dataset.features);
  return (
    <>
      <p class="facts">
        Version {stats.version}
        {stats.scope === 'sample' ? ' · computed over the public sample only (this caller has no full access)' : ' · all episodes'}
      </p>
      <table class="data compact" data-testid="stats-table">
        <thead>
          <tr>
            <th>feature / component</th>
            <th class="num">count</th>
            {statColumns.map((column) => (
              <th key={column} class="num">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {features.map(([name, feature]) => {
            const summary = stats.features[name];
            if (!summary) return null;
            if (!isNumeric(feature) || !summary.mean) {
              return (
                <tr key={name} class="group">
                  <td>
                    <code>{name}</code>
                  </td>
                  <td class="num">{formatNumber(summary.count)}</td>
                  <td colSpan={statColumns.length} class="sub">
                    {feature.dtype === 'image' || feature.dtype === 'video' ? 'frames' : ''}
                  </td>
                </tr>
              );
            }
            return <NumericStatsRows key={name} name={name} feature={feature} summary={summary} />;
          })}
        </tbody>
      </table>
    </>
  );
}

function NumericStatsRows(props: { name: string; feature: Feature; summary: Stats['features'][string] }) {
  const { name, feature, summary } = props;
  const components = componentNames(name, feature);
  return (
    <>
      <tr class="group">
        <td colSpan={2 + statColumns.length}>
          <code>{name}</code> <span class="sub">({components.length} components)</span>
        </td>
      </tr>
      {components.map((component, index) => (
        <tr key={component}>
          <td class="indent">{component}</td>
          <td class="num">{formatNumber(summary.count)}</td>
          {statColumns.map((column) => (
            <td key={column} class="num">
              {formatNumber(summary[column]?.[index])}
            </td>
          ))}
        </tr>
      ))}
    </>
  );
}

interface EpisodeFilters {
  task: string;
  minLength: string;
  maxLength: string;
  success: '' | 'true' | 'false';
}

const noFilters: EpisodeFilters = { task: '', minLength: '', maxLength: '', success: '' };

function episodesQuery(filters: EpisodeFilters, cursor: string | null): string {
  const query = new URLSearchParams({ limit: '100' });
  if (filters.task.trim()) query.set('task', filters.task.trim());
  if (filters.minLength.trim()) query.set('minLength', filters.minLength.trim());
  if (filters.maxLength.trim()) query.set('maxLength', filters.maxLength.trim());
  if (filters.success) query.set('success', filters.success);
  if (cursor) query.set('cursor', cursor);
  return query.toString();
}

function EpisodesSection({ dataset }: { dataset: Dataset }) {
  const [draft, setDraft] = useState<EpisodeFilters>(noFilters);
  const [filters, setFilters] = useState<EpisodeFilters>(noFilters);
  const [more, setMore] = useState<{ items: Episode[]; cursor: string | null } | null>(null);
  const loaded = useLoad(async () => {
    if (dataset.latestVersion === 0) return { items: [], nextCursor: null };
    setMore(null);
    return api<Page<Episode>>(`/v1/datasets/${enc(dataset.id)}/episodes?${episodesQuery(filters, null)}`);
  }, [dataset.id, JSON.stringify(filters)]);
  const [moreError, setMoreError] = useState<ApiError | null>(null);
  const field = (name: keyof EpisodeFilters) => ({
    value: draft[name],
    onInput: (event: { currentTarget: HTMLInputElement | HTMLSelectElement }) => setDraft({ ...draft, [name]: event.currentTarget.value }),
  });
  return (
    <section>
      <h2>Episodes</h2>
      <form
        class="filters"
        data-testid="episode-filters"
        onSubmit={(event) => {
          event.preventDefault();
          setFilters(draft);
        }}
      >
        <label>
          task <input name="task" type="search" placeholder="contains…" {...field('task')} />
        </label>
        <label>
          length ≥ <input name="minLength" type="number" min="0" {...field('minLength')} />
        </label>
        <label>
          length ≤ <input name="maxLength" type="number" min="0" {...field('maxLength')} />
        </label>
        <label>
          success{' '}
          <select name="success" {...field('success')}>
            <option value="">any</option>
            <option value="true">yes</option>
            <option value="false">no</option>
          </select>
        </label>
        <button type="submit">Filter</button>
        <button
          type="button"
          onClick={() => {
            setDraft(noFilters);
            setFilters(noFilters);
          }}
        >
          Clear
        </button>
      </form>
      {loaded.state === 'loading' ? <p class="loading">Loading…</p> : null}
      {loaded.state === 'error' ? <InlineError error={loaded.error} /> : null}
      {loaded.state === 'ok' ? (
        <>
          <EpisodesTable dataset={dataset} episodes={[...loaded.value.items, ...(more?.items ?? [])]} />
          {(more ? more.cursor : loaded.value.nextCursor) ? (
            <button
              type="button"
              onClick={() => {
                const cursor = more ? more.cursor : loaded.value.nextCursor;
                api<Page<Episode>>(`/v1/datasets/${enc(dataset.id)}/episodes?${episodesQuery(filters, cursor)}`).then(
                  (page) => setMore({ items: [...(more?.items ?? []), ...page.items], cursor: page.nextCursor }),
                  (error: unknown) => setMoreError(asApiError(error)),
                );
              }}
            >
              More episodes
            </button>
          ) : null}
          {moreError ? <InlineError error={moreError} /> : null}
        </>
      ) : null}
    </section>
  );
}

function EpisodesTable({ dataset, episodes }: { dataset: Dataset; episodes: Episode[] }) {
  if (episodes.length === 0) return <p class="empty">No episode matches.</p>;
  return (
    <table class="data compact" data-testid="episodes-table">
      <thead>
        <tr>
          <th class="num">episode</th>
          <th title="The episode's id in the data it was uploaded from">source</th>
          <th class="num">length</th>
          <th>task</th>
          <th>success</th>
          <th>set</th>
          <th class="num">version</th>
        </tr>
      </thead>
      <tbody>
        {episodes.map((episode) => (
          <tr key={episode.episodeIndex}>
            <td class="num">
              <a href={`/datasets/${enc(dataset.id)}/episodes/${episode.episodeIndex}`}>{episode.episodeIndex}</a>
            </td>
            <td>{episode.sourceEpisode}</td>
            <td class="num">{formatNumber(episode.length)}</td>
            <td>{episode.task ?? '—'}</td>
            <td>{episode.success === null ? '—' : episode.success ? 'yes' : 'no'}</td>
            <td>
              {episode.heldOut ? (
                <Badge kind="held-out">held out</Badge>
              ) : episode.publicSample ? (
                <Badge kind="sample">public sample</Badge>
              ) : null}
            </td>
            <td class="num">{episode.version}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The dataset's terms (anyone), and to its owner what policies trained on it earned this month (docs/ledger.md). */
function TermsSection({ datasetId }: { datasetId: string }) {
  const terms = useLoad(() => api<Terms>(`/v1/datasets/${enc(datasetId)}/terms`), [datasetId]);
  // Only the owner (or an admin) may read earnings: for anyone else the request is refused and the table is left out.
  const earnings = useLoad(() => api<Earnings>(`/v1/datasets/${enc(datasetId)}/earnings`), [datasetId]);
  const current = terms.state === 'ok' ? terms.value.current : null;
  return (
    <section data-testid="terms">
      <h2>Terms</h2>
      {terms.state === 'error' ? <InlineError error={terms.error} /> : null}
      {terms.state === 'ok' ? (
        current ? (
          <p class="facts">
            {current.feePer1000Calls} {current.currency} per 1,000 calls of a policy trained on it · edge export {current.edgeExport} ·
            since {formatDate(current.effectiveFrom)}
            {current.text ? ` · ${current.text}` : ''}
          </p>
        ) : (
          <p class="empty">No terms set: no fee, no edge export.</p>
        )
      ) : null}
      {earnings.state === 'ok' ? <EarningsTable earnings={earnings.value} /> : null}
    </section>
  );
}

function EarningsTable({ earnings }: { earnings: Earnings }) {
  return (
    <div data-testid="earnings">
      <h3>
        Earnings since {formatDate(earnings.from)}: {earnings.totals.amount} {earnings.currency} from {formatNumber(earnings.totals.calls)}{' '}
        calls
      </h3>
      {earnings.lines.length === 0 ? (
        <p class="empty">No policy trained on this dataset has been called in this period.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>policy</th>
              <th class="num">share</th>
              <th class="num">fee / 1,000</th>
              <th class="num">calls</th>
              <th class="num">earned</th>
            </tr>
          </thead>
          <tbody>
            {earnings.lines.map((line) => (
              <tr key={`${line.policyId}-${line.termsId ?? 'none'}-${line.exportId ?? 'server'}`}>
                <td>
                  <a href={`/policies/${enc(line.policyId)}`}>{line.policyName ?? line.policyId}</a> v{line.policyVersion ?? '?'}
                  {/* Calls an edge package reported, priced by the terms of its license. */}
                  {line.exportId ? ` · on a device (${line.exportId})` : ''}
                </td>
                <td class="num">{line.share}</td>
                <td class="num">{line.feeMinorPer1000}</td>
                <td class="num">{formatNumber(line.calls.total)}</td>
                <td class="num">{line.amountMinor}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="note">
        Fees and amounts in minor units ({earnings.currency === 'JPY' ? 'yen' : 'cents'}); each line is rounded once, half to even.
      </p>
    </div>
  );
}

function UploadsSection({ datasetId }: { datasetId: string }) {
  const loaded = useLoad(() => api<Page<Upload>>(`/v1/datasets/${enc(datasetId)}/uploads?limit=100`), [datasetId]);
  return (
    <section>
      <h2>Uploads</h2>
      {loaded.state === 'loading' ? <p class="loading">Loading…</p> : null}
      {loaded.state === 'error' ? (
        <InlineError
          error={loaded.error}
          note={
            loaded.error.status === 401 || loaded.error.status === 403
              ? 'The upload history is shown to operator and admin keys only: enter such a key at the top right to see it.'
              : undefined
          }
        />
      ) : null}
      {loaded.state === 'ok' ? <UploadsTable uploads={loaded.value.items} /> : null}
    </section>
  );
}

function UploadsTable({ uploads }: { uploads: Upload[] }) {
  if (uploads.length === 0) return <p class="empty">No uploads yet.</p>;
  return (
    <table class="data compact" data-testid="uploads-table">
      <thead>
        <tr>
          <th>upload</th>
          <th>status</th>
          <th>format</th>
          <th>file</th>
          <th class="num">size</th>
          <th class="num">episodes</th>
          <th class="num">steps</th>
          <th class="num">version</th>
          <th>created</th>
          <th>errors and warnings</th>
        </tr>
      </thead>
      <tbody>
        {uploads.map((upload) => (
          <tr key={upload.id}>
            <td>
              <code>{upload.id}</code>
            </td>
            <td>
              <Badge kind={upload.status}>{upload.status}</Badge>
              {upload.status === 'processing' ? ` ${Math.round(upload.progress * 100)} %` : ''}
            </td>
            <td>{upload.format ?? '—'}</td>
            <td>{upload.fileName ?? '—'}</td>
            <td class="num">{formatBytes(upload.bytes)}</td>
            <td class="num">{formatNumber(upload.episodeCount)}</td>
            <td class="num">{formatNumber(upload.stepCount)}</td>
            <td class="num">{upload.version ?? '—'}</td>
            <td>{formatDate(upload.createdAt)}</td>
            <td>
              {upload.inspection ? (
                <UploadInspection inspection={upload.inspection} message={upload.errors[0]?.message ?? ''} />
              ) : upload.errors.length > 0 ? (
                <ul class="issues errors">
                  {upload.errors.map((issue, index) => (
                    <li key={index}>
                      <code>{issue.code}</code> {issue.message}
                      {issue.location ? <div class="location">at {formatLocation(issue.location)}</div> : null}
                    </li>
                  ))}
                </ul>
              ) : null}
              {upload.warnings.length > 0 ? (
                <details>
                  <summary>{upload.warnings.length} warnings</summary>
                  <ul class="issues warnings">
                    {upload.warnings.slice(0, 200).map((issue, index) => (
                      <li key={index}>
                        <code>{issue.code}</code> {issue.message}
                        {issue.location ? <div class="location">at {formatLocation(issue.location)}</div> : null}
                      </li>
                    ))}
                  </ul>
                </details>
              ) : null}
              {upload.errors.length === 0 && upload.warnings.length === 0 ? '—' : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A bag that came without a mapping: its topics, and the suggested mapping to upload again with. */
function UploadInspection(props: { inspection: NonNullable<Upload['inspection']>; message: string }) {
  const { inspection } = props;
  return (
    <div class="inspection">
      <p>{props.message}</p>
      <table>
        <thead>
          <tr>
            <th>topic</th>
            <th>schema</th>
            <th class="num">messages</th>
            <th class="num">Hz</th>
            <th>fields</th>
          </tr>
        </thead>
        <tbody>
          {inspection.topics.map((topic) => (
            <tr key={topic.topic}>
              <td>
                <code>{topic.topic}</code>
              </td>
              <td>{topic.schemaName ?? '—'}</td>
              <td class="num">{formatNumber(topic.messageCount)}</td>
              <td class="num">{topic.rateHz ?? '—'}</td>
              <td>{topic.undecodable ? `not readable: ${topic.undecodable}` : topic.fields.map(fieldLabel).join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {inspection.suggestedMapping ? (
        <details open>
          <summary>suggested mapping (upload again with it as options)</summary>
          <pre>{JSON.stringify({ mapping: inspection.suggestedMapping }, null, 2)}</pre>
        </details>
      ) : null}
    </div>
  );
}

type InspectedField = NonNullable<Upload['inspection']>['topics'][number]['fields'][number];

/** `position[6]`, `data (jpeg image)`, `data (raw bgr8 image)`: as the CLI lists a bag's fields (inspectedFieldLabel in @kura/schema, which the viewer does not bundle). */
function fieldLabel(field: InspectedField): string {
  if (field.kind === 'numeric') return `${field.path}[${field.size}]`;
  if (field.kind !== 'image') return `${field.path} (${field.kind})`;
  if (field.encoding !== 'raw') return `${field.path} (${field.encoding} image)`;
  return `${field.path} (raw ${field.pixelFormat} image${field.convertible ? '' : ', not convertible'})`;
}
