'use strict';
// Unit tests: node's built-in runner only (`node --test tests/`), no dependencies.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const { createServer, SERVICE, PUBLIC_DIR } = require('../server.js');
const pkg = require('../package.json');
const spec = require('../openapi.json');

function get(port, urlPath, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe(`${SERVICE} static server`, () => {
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
    assert.deepEqual(JSON.parse(res.body), { status: 'ok', service: 'pmmg-static' });
  });

  it('GET / serves the PMMG client page', async () => {
    const res = await get(port, '/');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/html/);
    assert.match(res.body, /PMMG N3XUS R3CORDINGS M3DIA 3NGIN3/);
    assert.match(res.body, /PUABO Holdings LLC/);
  });

  it('serves the client script and stylesheet with their content types', async () => {
    const js = await get(port, '/pmmg.js');
    assert.equal(js.status, 200);
    assert.match(js.headers['content-type'], /^application\/javascript/);
    assert.match(js.body, /AudioContext/);
    const css = await get(port, '/style.css');
    assert.equal(css.status, 200);
    assert.match(css.headers['content-type'], /^text\/css/);
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

  it('never serves files outside public/', async () => {
    for (const p of ['/../server.js', '/%2e%2e/server.js', '/..%2fpackage.json', '/%2e%2e%2f%2e%2e%2fetc/passwd', '/%00']) {
      const res = await get(port, p);
      assert.equal(res.status, 404, `GET ${p}`);
    }
  });

  it('answers 404 JSON on a missing file', async () => {
    const res = await get(port, '/no-such-file.js');
    assert.equal(res.status, 404);
    assert.equal(JSON.parse(res.body).error, 'not found');
  });

  it('refuses methods other than GET and HEAD with 405', async () => {
    const res = await get(port, '/index.html', 'POST');
    assert.equal(res.status, 405);
  });

  // public/ is a copy of web/pmmg/, the source of truth. Inside the image only the
  // copy exists, so the comparison runs where the repository is checked out.
  const source = path.join(__dirname, '..', '..', '..', 'web', 'pmmg');
  it('public/ holds the same files as web/pmmg/', { skip: !fs.existsSync(source) && 'web/pmmg/ not present (inside the image)' }, () => {
    const names = fs.readdirSync(source).sort();
    assert.deepEqual(fs.readdirSync(PUBLIC_DIR).sort(), names);
    for (const name of names) {
      assert.ok(
        fs.readFileSync(path.join(source, name)).equals(fs.readFileSync(path.join(PUBLIC_DIR, name))),
        `public/${name} differs from web/pmmg/${name}: run cp ../../web/pmmg/* public/`,
      );
    }
  });
});
