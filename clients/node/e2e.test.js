// End-to-end test: every diffrank.v1 RPC from Node's @grpc/grpc-js against
// a running server. DIFFRANK_TARGET (host:port) and DIFFRANK_ADMIN_KEY are
// set by tests/e2e/test_node_grpcurl.py, which starts the server.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { connect, grpc } = require('./client');

const target = process.env.DIFFRANK_TARGET;
const c = connect(target, { apiKey: process.env.DIFFRANK_ADMIN_KEY });
const coll = `node_${process.pid}`;

test('every RPC from grpc-js', async () => {
  const info = await c.call('Info', {});
  assert.strictEqual(info.embedder.role, 'bi-encoder');
  const created = await c.call('CreateCollection', { name: coll, index: 'Flat' });
  assert.strictEqual(created.name, coll);
  const list = await c.call('ListCollections', {});
  assert.ok(list.collections.some((x) => x.name === coll));
  const up = await c.upsert(coll, [
    [{ id: 'a', text: 'Node.js runs JavaScript on a server.', metadata: '{"k": 1}' },
      { id: 'b', text: 'Bread is baked in an oven.' }],
    [{ id: 'c', text: 'The gRPC library for Node is grpc-js.' }],
  ]);
  assert.strictEqual(Number(up.upserted), 3);
  const s = await c.call('Search', { collection: coll, query: 'JavaScript server runtime', topK: 2,
    includeText: true });
  assert.strictEqual(s.hits.length, 2);
  assert.ok(['a', 'c'].includes(s.hits[0].id));
  assert.ok(s.timing.totalUs > 0);
  const rr = await c.call('Rerank', { query: 'how is bread made', documents: ['grpc', 'bread is baked'], topN: 1 });
  assert.strictEqual(rr.results[0].index, 1);
  const e = await c.call('Embed', { texts: ['hello'], kind: 'EMBED_KIND_QUERY' });
  assert.strictEqual(e.embeddings[0].values.length, e.dimension);
  const g = await c.call('Get', { collection: coll, ids: ['a', 'zz'] });
  assert.deepStrictEqual(g.documents.map((d) => d.id), ['a']);
  const st = await c.call('CollectionStats', { name: coll });
  assert.strictEqual(Number(st.info.documents), 3);
  const del = await c.call('Delete', { collection: coll, ids: ['a'] });
  assert.strictEqual(Number(del.deleted), 1);
  await c.call('DropCollection', { name: coll });
  await assert.rejects(c.call('CollectionStats', { name: coll }),
    (err) => err.code === grpc.status.NOT_FOUND);
  await assert.rejects(c.call('Search', { collection: 'x', query: '' }),
    (err) => err.code === grpc.status.INVALID_ARGUMENT && /query/.test(err.details));
  c.close();
});
