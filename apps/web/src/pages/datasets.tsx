import { allPages, type Dataset, type Robot } from '../api';
import { Badge, formatNumber, Loading, useLoad } from '../ui';

/** Every dataset the caller may see: name, robot, episodes, steps, access, license. */
export function DatasetsPage() {
  const loaded = useLoad(async () => {
    const [datasets, robots] = await Promise.all([
      allPages<Dataset>('/v1/datasets'),
      // Robots only name the datasets' embodiments; without them the ids are shown.
      allPages<Robot>('/v1/robots').catch(() => [] as Robot[]),
    ]);
    return { datasets, robots: new Map(robots.map((robot) => [robot.id, robot])) };
  }, []);
  return (
    <section>
      <h1>Datasets</h1>
      <Loading loaded={loaded} what="datasets">
        {({ datasets, robots }) =>
          datasets.length === 0 ? (
            <p class="empty">No datasets are visible to this caller. Private datasets need a key of their owner, a grantee or an admin.</p>
          ) : (
            <table class="data" data-testid="datasets-table">
              <thead>
                <tr>
                  <th>name</th>
                  <th>robot</th>
                  <th class="num">episodes</th>
                  <th class="num">steps</th>
                  <th>access</th>
                  <th>license</th>
                </tr>
              </thead>
              <tbody>
                {datasets.map((dataset) => {
                  const robot = robots.get(dataset.robotId);
                  return (
                    <tr key={dataset.id}>
                      <td>
                        <a href={`/datasets/${encodeURIComponent(dataset.id)}`}>{dataset.name}</a>
                        {dataset.description ? <div class="sub">{dataset.description}</div> : null}
                      </td>
                      <td>{robot ? `${robot.name} (${robot.robotType})` : <code>{dataset.robotId}</code>}</td>
                      <td class="num">{formatNumber(dataset.episodeCount)}</td>
                      <td class="num">{formatNumber(dataset.stepCount)}</td>
                      <td>
                        <Badge kind={dataset.access}>{dataset.access}</Badge>
                      </td>
                      <td>{dataset.license ?? '—'}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </Loading>
    </section>
  );
}
