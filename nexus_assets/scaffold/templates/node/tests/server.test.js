'use strict';
// Unit tests: node's built-in runner only (`node --test tests/`), no dependencies.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const { createServer, SERVICE } = require('../server.js');
const pkg = require('../package.json');
const spec = require('../openapi.json');

function get(port, path, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe(`${SERVICE} HTTP API`, () => {
  let server;
  let port;

  before(async () => {
    server = createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
  });

  after(() => new Promise((resolve) => server.close(resolve)));

  it('GET /health answers 200 with status ok and the service name', async () => {
    const res = await get(port, '/health');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { status: 'ok', service: '{{SERVICE_NAME}}' });
  });

  it('GET / describes the service with its name and version', async () => {
    const res = await get(port, '/');
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body);
    assert.equal(body.name, SERVICE);
    assert.equal(body.version, pkg.version);
  });

  it('GET /status reports the scaffolded service', async () => {
    const res = await get(port, '/status');
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body);
    assert.equal(body.service, SERVICE);
    assert.equal(body.scaffolded, true);
  });

  it('answers 200 on every GET path listed in openapi.json', async () => {
    const paths = Object.keys(spec.paths).filter((p) => spec.paths[p].get);
    assert.ok(paths.includes('/health'));
    for (const p of paths) {
      const res = await get(port, p);
      assert.equal(res.status, 200, `GET ${p}`);
    }
  });

  it('openapi.json is an OpenAPI 3 document titled after the service', () => {
    assert.match(spec.openapi, /^3\./);
    assert.equal(spec.info.title, SERVICE);
    assert.equal(spec.info.version, pkg.version);
  });

  it('answers 404 JSON on an unknown path', async () => {
    const res = await get(port, '/no-such-path');
    assert.equal(res.status, 404);
    assert.equal(JSON.parse(res.body).error, 'not found');
  });

  it('refuses methods other than GET and HEAD with 405', async () => {
    const res = await get(port, '/health', 'POST');
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
  });
});
