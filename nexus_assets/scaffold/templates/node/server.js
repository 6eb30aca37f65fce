'use strict';
// {{SERVICE_NAME}}: {{DESCRIPTION}}
// Scaffolded by nexus-agent (operator guide step D). Standard library only, so the image
// builds offline. `node server.js` starts it; tests require() this module and call
// createServer() without starting anything.
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const SERVICE = '{{SERVICE_NAME}}';
const { version: VERSION } = require('./package.json');
const DEFAULT_PORT = Number('{{PORT}}');
const SPEC = JSON.parse(fs.readFileSync(path.join(__dirname, 'openapi.json'), 'utf8'));

// path -> (url) => response body. Every path here is listed in openapi.json: add the
// module's real endpoints here and there together.
const ROUTES = new Map([
  ['/health', () => ({ status: 'ok', service: SERVICE })],
  ['/', () => ({ name: SERVICE, version: VERSION, description: SPEC.info.description })],
  ['/openapi.json', () => SPEC],
  ['/status', () => ({ service: SERVICE, version: VERSION, scaffolded: true, uptime_seconds: Math.round(process.uptime()) })],
]);

function log(fields) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), service: SERVICE, ...fields }) + '\n');
}

function sendJson(req, res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(data),
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : data);
}

function handler(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendJson(req, res, 405, { error: 'method not allowed', method: req.method }, { Allow: 'GET, HEAD' });
  }
  const url = new URL(req.url, 'http://localhost');
  const route = ROUTES.get(url.pathname);
  if (!route) {
    return sendJson(req, res, 404, { error: 'not found', path: url.pathname });
  }
  try {
    return sendJson(req, res, 200, route(url));
  } catch (err) {
    log({ event: 'error', path: url.pathname, error: String(err && err.message) });
    return sendJson(req, res, 500, { error: 'internal error' });
  }
}

function createServer() {
  return http.createServer(handler);
}

function start({ port = Number(process.env.PORT) || DEFAULT_PORT, host = process.env.HOST || '0.0.0.0' } = {}) {
  const server = createServer();
  // As PID 1 in a container, node ignores SIGTERM unless it handles it: exit promptly
  // so `docker stop` does not wait for the kill timeout.
  const stop = (signal) => {
    log({ event: 'stopping', signal });
    server.close(() => process.exit(0));
    if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  server.listen(port, host, () => log({ event: 'listening', host, port: server.address().port, version: VERSION }));
  return server;
}

module.exports = { createServer, handler, start, SERVICE, ROUTES };

if (require.main === module) {
  start();
}
