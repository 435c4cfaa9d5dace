import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateFiles, repoRoot } from '../../../local/generate-events';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { decodeEvent, isRecordDecodeError } from '../../../shared/msk/decode';
import { runBatch, withRawRecords } from '../../../shared/msk/engine';
import { loadEvent } from '../../support/load-event';

const generated = generateFiles();
const eventFiles = [...generated.keys()].filter(
  (path) => path.startsWith('events/') && !path.includes('aws-examples'),
);

describe('generated files (npm run events:generate)', () => {
  it('are committed up to date, byte for byte', () => {
    const stale = [...generated].filter(([path, content]) => {
      try {
        return readFileSync(join(repoRoot, path), 'utf8') !== content;
      } catch {
        return true;
      }
    });
    expect(
      stale.map(([path]) => path),
      'run `npm run events:generate` and commit the result',
    ).toEqual([]);
  });

  it('are all there is under events/: a sample no longer generated would still be replayed by `dev`', () => {
    const onDisk = readdirSync(join(repoRoot, 'events'), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(repoRoot, join(entry.parentPath, entry.name)));
    expect(onDisk.filter((path) => !generated.has(path))).toEqual([]);
  });

  it('are deterministic', () => {
    expect(generateFiles()).toEqual(generated);
  });

  it('cover every function that consumes topics, each with a multi-partition batch, a tombstone and a poison record', () => {
    for (const fn of [
      'incident-explanation',
      'audit-append',
      'demand-prediction-update',
      'billing',
      'notifications',
      'oncall-paging',
    ]) {
      for (const name of ['multi-partition.json', 'tombstone.json', 'poison.json']) {
        expect(generated.has(`events/${fn}/${name}`), `${fn}/${name}`).toBe(true);
      }
    }
  });
});

describe.each(eventFiles)('%s', (path) => {
  const relative = path.slice('events/'.length);

  it('decodes: every record is a CloudEvent of its topic, except the poison record', async () => {
    const partitions = await decodeEvent(loadEvent(relative), { registry });
    const outcomes = partitions.flatMap((partition) => partition.records);
    const errors = outcomes.filter(isRecordDecodeError);
    expect(errors.map((error) => error.reason)).toEqual(
      relative.endsWith('poison.json') ? ['wrong-magic-byte'] : [],
    );
    for (const outcome of outcomes) {
      if (isRecordDecodeError(outcome) || outcome.tombstone) continue;
      expect(outcome.cloudEvent.type).toBe(outcome.topic);
      expect(outcome.key).toBe(outcome.cloudEvent.subject);
      expect(registry.latest(outcome.topic).readerType.isValid(outcome.data)).toBe(true);
    }
    expect(outcomes.some((outcome) => !isRecordDecodeError(outcome) && outcome.tombstone)).toBe(
      relative.endsWith('tombstone.json'),
    );
  });
});

describe('poison fixture', () => {
  it('fails the poison record and the rest of its partition only', async () => {
    const event = loadEvent('billing/poison.json');
    const partitions = withRawRecords(await decodeEvent(event, { registry }), event.records);
    const { response } = await runBatch(
      partitions,
      { kind: 'stop', handle: () => undefined },
      { logger: { error: () => undefined, warn: () => undefined } },
    );
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([
      { partition: 'booking.completed-2', offset: 901 },
      { partition: 'booking.completed-2', offset: 902 },
    ]);
  });

  it('multi-partition fixtures carry several topic-partitions', () => {
    expect(Object.keys(loadEvent('oncall-paging/multi-partition.json').records)).toEqual([
      'incident.detected-0',
      'incident.detected-3',
      'incident.detected-5',
    ]);
  });
});
