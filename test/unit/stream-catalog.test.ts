import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { StreamCatalog } from '../../lib/service/control-plane/stream-catalog.js';
import { openDatabase } from '../../lib/service/storage/database.js';
import { makeTempDir, removeDir } from './storage/fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

const newStream = (name: string) => ({ name, retentionHours: 1 });

it('creates a stream and the create listener\'s work in one transaction; a failing listener leaves no stream', () => {
  const db = openDatabase(join(dir, 'index.db'));
  db.exec('CREATE TABLE extras (stream_id INTEGER)');
  const catalog = new StreamCatalog(db, { region: 'us-east-1', accountId: '000000000000' });
  const rolledBack: number[] = [];
  let fail = false;
  catalog.onCreate({
    created: (s) => {
      db.prepare('INSERT INTO extras VALUES (?)').run(s.id);
      if (fail) throw new Error('listener failed');
    },
    rolledBack: (id) => rolledBack.push(id),
  });
  const a = catalog.create(newStream('a'));
  fail = true;
  expect(() => catalog.create(newStream('b'))).toThrow('listener failed');
  expect(catalog.byName('b')).toBeUndefined();
  expect(rolledBack).toHaveLength(1);
  // The rolled-back id is given again; nothing cached under it survives.
  fail = false;
  const c = catalog.create(newStream('c'));
  expect(c.id).toBe(rolledBack[0]);
  expect(catalog.byId(c.id)?.name).toBe('c');
  expect(db.prepare('SELECT stream_id FROM extras ORDER BY stream_id').pluck().all()).toEqual([a.id, c.id]);
  db.close();
});
