'use strict';
// backend-api: API gateway of the Nexus COS platform: routes client calls to the domain services.
// Standard library only, so the image builds offline. `node server.js` starts it;
// tests require() this module and call createServer() without starting anything.
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const SERVICE = 'backend-api';
const { version: VERSION } = require('./package.json');
const DEFAULT_PORT = 3001;
const SPEC = JSON.parse(fs.readFileSync(path.join(__dirname, 'openapi.json'), 'utf8'));

// Upstreams come from the environment so compose can rewire them; defaults match docker-compose.yml.
const UPSTREAMS = [
  { name: 'auth-service', prefix: '/auth', url: process.env.AUTH_SERVICE_URL || 'http://auth-service:3002' },
  { name: 'users', prefix: '/users', url: process.env.USERS_URL || 'http://users:8001' },
  { name: 'content-cms', prefix: '/content', url: process.env.CONTENT_CMS_URL || 'http://content-cms:3003' },
  { name: 'payments', prefix: '/payments', url: process.env.PAYMENTS_URL || 'http://payments:3004' },
  { name: 'search', prefix: '/search', url: process.env.SEARCH_URL || 'http://search:3006' },
];

// path -> (url) => response body. Every path here is listed in openapi.json.
const ROUTES = new Map([
  ['/health', () => ({ status: 'ok', service: SERVICE })],
  ['/', () => ({ name: SERVICE, version: VERSION, description: SPEC.info.description })],
  ['/openapi.json', () => SPEC],
  ['/api/status', () => ({ service: SERVICE, version: VERSION, uptime_seconds: Math.round(process.uptime()), upstreams: UPSTREAMS.map((u) => u.name) })],
  ['/api/routes', () => ({ routes: UPSTREAMS.map(({ prefix, name, url }) => ({ prefix, upstream: name, url })) })],
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
