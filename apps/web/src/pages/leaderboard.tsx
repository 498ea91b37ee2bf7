import { api, enc, type Dataset, type LeaderboardEntry } from '../api';
import { formatDate, formatNumber, Loading, useLoad } from '../ui';

/** Ready policies ranked by their latest evaluation's action MSE on the dataset's held-out episodes. */
export function LeaderboardPage(props: { datasetId: string }) {
  const { datasetId } = props;
  const loaded = useLoad(
    () =>
      Promise.all([
        api<Dataset>(`/v1/datasets/${enc(datasetId)}`),
        api<{ items: LeaderboardEntry[] }>(`/v1/datasets/${enc(datasetId)}/leaderboard`),
      ]),
    [datasetId],
  );
  return (
    <Loading loaded={loaded} what="the leaderboard">
      {([dataset, board]) => (
        <section>
          <p class="crumbs">
            <a href="/datasets">Datasets</a> / <a href={`/datasets/${enc(dataset.id)}`}>{dataset.name}</a> /
          </p>
          <h1>Leaderboard</h1>
          <p class="facts">
            Ready policies by the action MSE of their latest completed evaluation on the held-out episodes (lower is better).
          </p>
          {board.items.length === 0 ? (
            <p class="empty">No policy has been evaluated on this dataset yet.</p>
          ) : (
            <table class="data" data-testid="leaderboard-table">
              <thead>
                <tr>
                  <th class="num">rank</th>
                  <th>policy</th>
                  <th class="num">action MSE</th>
                  <th class="num">action MAE</th>
                  <th class="num">episodes</th>
                  <th class="num">steps</th>
                  <th class="num">dataset version</th>
                  <th>evaluated</th>
                </tr>
              </thead>
              <tbody>
                {board.items.map((entry) => (
                  <tr key={entry.policyId}>
                    <td class="num">{entry.rank}</td>
                    <td>
                      <a href={`/policies/${enc(entry.policyId)}`}>
                        {entry.name ?? entry.policyId}
                        {entry.version !== null ? ` v${entry.version}` : ''}
                      </a>
                    </td>
                    <td class="num">{formatNumber(entry.metrics.actionMse)}</td>
                    <td class="num">{formatNumber(entry.metrics.actionMae)}</td>
                    <td class="num">{formatNumber(entry.metrics.episodesEvaluated)}</td>
                    <td class="num">{formatNumber(entry.metrics.stepsEvaluated)}</td>
                    <td class="num">{entry.datasetVersion}</td>
                    <td>{formatDate(entry.evaluatedAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
    </Loading>
  );
}
