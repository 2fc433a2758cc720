// client.js: a Node.js client for diffrank.v1, loading the .proto at run
// time with @grpc/proto-loader (no code generation).
//   const { connect } = require('./client');
//   const c = connect('127.0.0.1:50051', { apiKey: '...' });
//   const r = await c.call('Search', { collection: 'docs', query: 'q', topK: 5 });
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.join(__dirname, '..', '..', 'proto', 'diffrank', 'v1', 'diffrank.proto');

function loadService() {
  const def = protoLoader.loadSync(PROTO, {
    keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true,
  });
  return grpc.loadPackageDefinition(def).diffrank.v1.Diffrank;
}

function connect(target, { apiKey, timeoutMs = 30000, credentials } = {}) {
  const Diffrank = loadService();
  const stub = new Diffrank(target, credentials || grpc.credentials.createInsecure());
  const metadata = () => {
    const md = new grpc.Metadata();
    if (apiKey) md.set('authorization', `Bearer ${apiKey}`);
    return md;
  };
  const deadline = () => new Date(Date.now() + timeoutMs);
  return {
    stub,
    // call runs a unary RPC and resolves with its response.
    call(method, request) {
      return new Promise((resolve, reject) => {
        stub[method](request, metadata(), { deadline: deadline() }, (err, res) =>
          (err ? reject(err) : resolve(res)));
      });
    },
    // upsert streams batches of documents and resolves with the counts.
    upsert(collection, batches) {
      return new Promise((resolve, reject) => {
        const stream = stub.Upsert(metadata(), { deadline: deadline() }, (err, res) =>
          (err ? reject(err) : resolve(res)));
        for (const documents of batches) stream.write({ collection, documents });
        stream.end();
      });
    },
    close() { stub.close(); },
  };
}

module.exports = { connect, grpc };
