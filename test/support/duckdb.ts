import { DuckDBInstance } from '@duckdb/node-api';

/** Runs SQL with DuckDB (a reader that is not Kura's: `read_parquet(…)`, `parquet_kv_metadata(…)`) and returns the rows as JS values. */
export async function duckdbRows(sql: string): Promise<Array<Record<string, unknown>>> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJS();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
