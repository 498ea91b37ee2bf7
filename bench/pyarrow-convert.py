"""The ingest bench's peer baseline: what a Python user would do to turn a Kura NDJSON upload into
Arrow with pyarrow alone. pyarrow's C++ JSON reader (multi-threaded), base64 images decoded, one
Arrow IPC file written; no validation, no statistics, no upload. Prints JSON with the seconds of
the JSON read alone and of the whole conversion (Python's start and pyarrow's import not counted).

Usage: python3 bench/pyarrow-convert.py UPLOAD.ndjson OUT.arrow
"""
import base64
import json
import sys
import time

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.json as pj


def main(source, target):
    started = time.perf_counter()
    table = pj.read_json(source)
    read = time.perf_counter() - started
    # observation.images.front.jpeg and the like: nested objects become flat columns.
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    for index, name in enumerate(table.column_names):
        if name.endswith(".jpeg") or name.endswith(".png"):
            chunks = [pa.array(map(base64.b64decode, chunk.to_pylist()), pa.binary()) for chunk in table.column(index).chunks]
            table = table.set_column(index, name, pa.chunked_array(chunks, pa.binary()))
    with ipc.new_file(target, table.schema) as writer:
        writer.write_table(table)
    print(json.dumps({"readSeconds": read, "seconds": time.perf_counter() - started, "rows": table.num_rows}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
