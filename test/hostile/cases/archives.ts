// Archives: entries that climb out (`..`, absolute, drive letters, pax paths), links and devices
// pointing at the canary, bombs (one entry, many entries, overlapping entries), headers that lie,
// truncation, duplicates, nesting and very many files. Each upload must end failed with its ARCHIVE_*
// code (or, for a harmless oddity, be read as it is) — and nothing outside the upload may be read.
import type { CaseContext, HostileCase } from '../corpus.js';
import { upload } from '../corpus.js';
import { gzip, ndjson, overlappingZip, tar, zip, zipOf, type TarEntry, type ZipEntry } from '../builders.js';

const MiB = 1024 * 1024;
/** A valid Kura NDJSON file: what the archive would be without its hostile entry. */
const episodes = ndjson({ episodes: 2 });
/** From an upload's `work/<id>/files/`, up to the test's scratch folder, where a canary lives. */
const toScratchCanary = '../../../../canary/canary.txt';

function archiveCase(
  name: string,
  expect: string | readonly string[],
  body: (context: CaseContext) => Uint8Array,
  query?: string,
): HostileCase {
  return {
    family: 'archives',
    name: `archives/${name}`,
    expect,
    run: (context) => upload(context, { body: body(context), ...(query ? { query } : {}) }),
  };
}

/** A tar.gz of the valid episodes plus `entries`. */
const tarGzWith = (...entries: TarEntry[]) => gzip(tar([{ name: 'episodes.ndjson', data: episodes }, ...entries]));
/** A zip of the valid episodes plus `entries`. */
const zipWith = (...entries: ZipEntry[]) => zip([{ name: 'episodes.ndjson', content: episodes }, ...entries]);

function tarCases(): HostileCase[] {
  const traversal = 'failed ARCHIVE_PATH_TRAVERSAL';
  const link = 'failed ARCHIVE_LINK_REFUSED';
  const unsupported = 'failed ARCHIVE_ENTRY_UNSUPPORTED';
  const corrupt = 'failed ARCHIVE_CORRUPT';
  return [
    archiveCase('tar/dot-dot', traversal, () => tarGzWith({ name: '../evil.ndjson', data: episodes })),
    archiveCase('tar/dot-dot-onto-the-canary', traversal, () => tarGzWith({ name: toScratchCanary, data: 'overwritten' })),
    archiveCase('tar/absolute', traversal, () => tarGzWith({ name: '/tmp/kura-hostile-absolute.ndjson', data: episodes })),
    archiveCase('tar/dot-dot-inside', traversal, () => tarGzWith({ name: 'a/b/../../../evil.ndjson', data: episodes })),
    archiveCase('tar/backslash-dot-dot', traversal, () => tarGzWith({ name: '..\\..\\evil.ndjson', data: episodes })),
    archiveCase('tar/drive-letter', traversal, () => tarGzWith({ name: 'C:\\Windows\\evil.ndjson', data: episodes })),
    archiveCase('tar/pax-path-climbing-out', traversal, () => {
      const record = (text: string) => {
        const line = ` ${text}\n`;
        let length = line.length + 1;
        while (String(length).length + line.length !== length) length = String(length).length + line.length;
        return `${length}${line}`;
      };
      return gzip(
        tar([
          { name: 'PaxHeader', type: 'x', data: record('path=../../pax-evil.ndjson') },
          { name: 'innocent.ndjson', data: episodes },
        ]),
      );
    }),
    archiveCase('tar/plain-tar-dot-dot', traversal, () =>
      tar([
        { name: 'ok.ndjson', data: episodes },
        { name: '../../evil', data: 'x' },
      ]),
    ),
    archiveCase('tar/symlink-to-the-canary', link, ({ canary }) =>
      tarGzWith({ name: 'more.ndjson', type: '2', linkname: canary.textFiles[0]! }),
    ),
    archiveCase('tar/symlink-to-tmp-canary', link, ({ canary }) =>
      tarGzWith({ name: 'more.ndjson', type: '2', linkname: canary.textFiles[1]! }),
    ),
    archiveCase('tar/symlink-relative', link, () => tarGzWith({ name: 'more.ndjson', type: '2', linkname: toScratchCanary })),
    archiveCase('tar/symlink-folder-then-file-through-it', link, () =>
      gzip(
        tar([
          { name: 'out', type: '2', linkname: '/tmp' },
          { name: 'out/kura-hostile-through-link.ndjson', data: episodes },
        ]),
      ),
    ),
    archiveCase('tar/hardlink-to-the-canary', link, ({ canary }) =>
      tarGzWith({ name: 'more.ndjson', type: '1', linkname: canary.textFiles[0]! }),
    ),
    archiveCase('tar/hardlink-to-etc-passwd', link, () => tarGzWith({ name: 'passwd.ndjson', type: '1', linkname: '/etc/passwd' })),
    archiveCase('tar/character-device', unsupported, () => tarGzWith({ name: 'null', type: '3' })),
    archiveCase('tar/block-device', unsupported, () => tarGzWith({ name: 'sda', type: '4' })),
    archiveCase('tar/fifo', unsupported, () => tarGzWith({ name: 'pipe', type: '6' })),
    archiveCase('tar/gnu-sparse', unsupported, () => tarGzWith({ name: 'sparse.bin', type: 'S', data: 'x' })),
    archiveCase('tar/volume-label', unsupported, () => tarGzWith({ name: 'LABEL', type: 'V' })),
    archiveCase('tar/name-of-5000-bytes', unsupported, () =>
      gzip(
        tar([
          { name: '././@LongLink', type: 'L', data: `${'d/'.repeat(2500)}x\0` },
          { name: 'x', data: episodes },
        ]),
      ),
    ),
    archiveCase('tar/same-path-twice', 'failed ARCHIVE_DUPLICATE_PATH', () => tarGzWith({ name: 'episodes.ndjson', data: episodes })),
    archiveCase('tar/file-then-folder-of-the-same-name', 'failed ARCHIVE_DUPLICATE_PATH', () =>
      tarGzWith({ name: 'episodes.ndjson/inner.ndjson', data: episodes }),
    ),
    archiveCase('tar/truncated-in-data', corrupt, () =>
      tar([{ name: 'episodes.ndjson', data: episodes }], { end: false }).subarray(0, 700),
    ),
    archiveCase('tar/bad-header-checksum', corrupt, () => tar([{ name: 'episodes.ndjson', data: episodes, badChecksum: true }])),
    archiveCase('tar/size-declaring-a-terabyte', corrupt, () =>
      gzip(tar([{ name: 'episodes.ndjson', data: episodes, declaredSize: 2 ** 40 }], { end: false })),
    ),
    archiveCase('tar/gz-truncated', corrupt, () => {
      const whole = tarGzWith();
      return whole.subarray(0, whole.length - 40);
    }),
    archiveCase('tar/gz-bad-crc', corrupt, () => {
      const whole = Buffer.from(tarGzWith());
      whole[whole.length - 6]! ^= 0xff;
      return whole;
    }),
    archiveCase('tar/gz-of-no-tar', corrupt, () => gzip('just some text, no tar inside\n'.repeat(50))),
    archiveCase('tar/gz-of-gz', corrupt, () => gzip(tarGzWith())),
    // 64 MiB of zeros shrink to ~64 KiB: past 200 times its compressed size once over 1 MiB.
    archiveCase('tar/gzip-bomb', 'failed ARCHIVE_TOO_LARGE', () => tarGzWith({ name: 'zeros.bin', data: Buffer.alloc(64 * MiB) })),
    archiveCase('tar/empty', 'failed ARCHIVE_EMPTY', () => gzip(Buffer.alloc(1024))),
    archiveCase('tar/only-folders', 'failed ARCHIVE_EMPTY', () =>
      gzip(
        tar([
          { name: 'a/', type: '5' },
          { name: 'a/b/', type: '5' },
        ]),
      ),
    ),
    archiveCase('tar/only-macos-metadata', 'failed ARCHIVE_EMPTY', () =>
      gzip(
        tar([
          { name: '__MACOSX/._episodes.ndjson', data: 'x' },
          { name: '.DS_Store', data: 'x' },
          { name: '._episodes.ndjson', data: 'x' },
        ]),
      ),
    ),
    archiveCase('tar/5000-files', 'failed FORMAT_UNKNOWN', () =>
      gzip(tar(Array.from({ length: 5000 }, (_, index) => ({ name: `many/file-${index}.bin`, data: String(index) })))),
    ),
    archiveCase('tar/nested-tar-with-traversal', 'failed FORMAT_UNKNOWN', () =>
      gzip(tar([{ name: 'inner.tar', data: tar([{ name: '../../evil.ndjson', data: episodes }]) }])),
    ),
    archiveCase('tar/setuid-mode-is-ignored', 'published', () => {
      const archive = tar([{ name: 'episodes.ndjson', data: episodes }]);
      archive.write('0004755\0', 100, 'ascii');
      // The mode is part of the header checksum: recompute it.
      archive.fill(0x20, 148, 156);
      let sum = 0;
      for (const byte of archive.subarray(0, 512)) sum += byte;
      archive.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
      return gzip(archive);
    }),
  ];
}

function zipCases(): HostileCase[] {
  return [
    archiveCase('zip/dot-dot', 'failed ARCHIVE_PATH_TRAVERSAL', () => zipWith({ name: '../../evil.ndjson', content: episodes })),
    archiveCase('zip/dot-dot-onto-the-canary', 'failed ARCHIVE_PATH_TRAVERSAL', () =>
      zipWith({ name: toScratchCanary, content: 'overwritten' }),
    ),
    archiveCase('zip/absolute', 'failed ARCHIVE_PATH_TRAVERSAL', () =>
      zipWith({ name: '/tmp/kura-hostile-absolute.ndjson', content: episodes }),
    ),
    archiveCase('zip/backslash-dot-dot', 'failed ARCHIVE_PATH_TRAVERSAL', () =>
      zipWith({ name: '..\\..\\evil.ndjson', content: episodes }),
    ),
    archiveCase('zip/nul-in-name', ['failed ARCHIVE_PATH_TRAVERSAL', 'failed ARCHIVE_CORRUPT'], () =>
      zipWith({ name: Buffer.from('ok.ndjson\0/../../evil'), content: episodes }),
    ),
    archiveCase('zip/name-of-5000-bytes', ['failed ARCHIVE_ENTRY_UNSUPPORTED', 'failed ARCHIVE_CORRUPT'], () =>
      zipWith({ name: `${'d/'.repeat(2500)}x`, content: episodes }),
    ),
    archiveCase('zip/symlink-to-the-canary', 'failed ARCHIVE_LINK_REFUSED', ({ canary }) =>
      zipWith({ name: 'more.ndjson', content: canary.textFiles[0]!, unixMode: 0o120777 }),
    ),
    archiveCase('zip/character-device', 'failed ARCHIVE_ENTRY_UNSUPPORTED', () =>
      zipWith({ name: 'tty', content: '', unixMode: 0o020644 }),
    ),
    archiveCase('zip/fifo', 'failed ARCHIVE_ENTRY_UNSUPPORTED', () => zipWith({ name: 'pipe', content: '', unixMode: 0o010644 })),
    archiveCase('zip/encrypted', 'failed ARCHIVE_ENTRY_UNSUPPORTED', () => zipWith({ name: 'secret.ndjson', content: episodes, flags: 1 })),
    archiveCase('zip/bzip2-method', 'failed ARCHIVE_ENTRY_UNSUPPORTED', () =>
      zipWith({ name: 'b.ndjson', raw: Buffer.from('BZh91AY&SY'), method: 12, declaredUncompressed: 10 }),
    ),
    archiveCase('zip/bomb', 'failed ARCHIVE_TOO_LARGE', () => zipWith({ name: 'zeros.bin', content: Buffer.alloc(64 * MiB) })),
    // Each entry stays at 1 MiB (where per-entry ratios are not checked); together they pass 200 × the zip.
    archiveCase('zip/many-small-bombs', 'failed ARCHIVE_TOO_LARGE', () =>
      zip(Array.from({ length: 40 }, (_, index) => ({ name: `zeros-${index}.bin`, content: Buffer.alloc(MiB) }))),
    ),
    // #19: 250 directory records all pointing at one 4 MiB entry wrote ~1 GB before failing.
    archiveCase('zip/overlapping-entries', 'failed ARCHIVE_OVERLAPPING_ENTRIES', () => overlappingZip(250, Buffer.alloc(4 * MiB))),
    // #19: a zip whose headers say 10 bytes for more made yauzl emit an unhandled 'error'.
    archiveCase('zip/lying-smaller-size', 'failed ARCHIVE_CORRUPT', () =>
      zip([{ name: 'episodes.ndjson', content: episodes, declaredUncompressed: 10 }]),
    ),
    archiveCase('zip/lying-larger-size', ['failed ARCHIVE_TOO_LARGE', 'failed ARCHIVE_CORRUPT'], () =>
      zip([{ name: 'episodes.ndjson', content: episodes, declaredUncompressed: 2 ** 32 - 1 }]),
    ),
    archiveCase('zip/crc-mismatch', 'failed ARCHIVE_CORRUPT', () =>
      zip([{ name: 'episodes.ndjson', content: episodes, declaredCrc: 0x12345678 }]),
    ),
    archiveCase('zip/truncated', 'failed ARCHIVE_CORRUPT', () => {
      const whole = zipWith();
      return Buffer.concat([whole.subarray(0, whole.length - 200), whole.subarray(whole.length - 22)]);
    }),
    archiveCase('zip/claims-65535-entries', 'failed ARCHIVE_CORRUPT', () =>
      zip([{ name: 'episodes.ndjson', content: episodes }], { declaredCount: 65535 }),
    ),
    archiveCase('zip/directory-past-the-end', 'failed ARCHIVE_CORRUPT', () =>
      zip([{ name: 'episodes.ndjson', content: episodes }], { directoryOffsetShift: 1_000_000 }),
    ),
    archiveCase('zip/same-name-twice', 'failed ARCHIVE_DUPLICATE_PATH', () => zipWith({ name: 'episodes.ndjson', content: episodes })),
    archiveCase('zip/empty', 'failed ARCHIVE_EMPTY', () => zip([])),
    archiveCase('zip/5000-files', 'failed FORMAT_UNKNOWN', () =>
      zip(Array.from({ length: 5000 }, (_, index) => ({ name: `many/file-${index}.bin`, content: String(index), method: 0 }))),
    ),
    archiveCase('zip/nested-zip', 'failed FORMAT_UNKNOWN', () => zipOf({ 'inner.zip': zipOf({ '../../evil.ndjson': episodes }) })),
    archiveCase('zip/stored-entry-shorter-than-declared', 'failed ARCHIVE_CORRUPT', () =>
      zip([
        {
          name: 'episodes.ndjson',
          raw: Buffer.from(episodes).subarray(0, 20),
          method: 0,
          declaredUncompressed: Buffer.byteLength(episodes),
        },
      ]),
    ),
    archiveCase('zip/with-format-flag-of-lerobot', 'failed FORMAT_MISMATCH', () => zipWith(), 'format=lerobot'),
  ];
}

export function archiveCases(): HostileCase[] {
  return [...tarCases(), ...zipCases()];
}
