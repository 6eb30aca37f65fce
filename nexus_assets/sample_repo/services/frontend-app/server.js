'use strict';
// frontend-app: web front end of Nexus COS. Serves the landing page (public/index.html)
// and the build info it shows. Standard library only, so the image builds offline.
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const SERVICE = 'frontend-app';
const { version: VERSION } = require('./package.json');
const DEFAULT_PORT = 3008;
const SPEC = JSON.parse(fs.readFileSync(path.join(__dirname, 'openapi.json'), 'utf8'));
// Read once at start: the page is small and never changes while the process runs.
const INDEX_HTML = fs.readFileSync(path.join(__dirname, 'public', 'index.html'));

function log(fields) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), service: SERVICE, ...fields }) + '\n');
}

function send(req, res, status, body, contentType, headers = {}) {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': data.length,
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : data);
}

function sendJson(req, res, status, body, headers = {}) {
  send(req, res, status, JSON.stringify(body), 'application/json; charset=utf-8', headers);
}

const JSON_ROUTES = new Map([
  ['/health', () => ({ status: 'ok', service: SERVICE })],
  ['/openapi.json', () => SPEC],
  ['/api/info', () => ({ name: SERVICE, version: VERSION, api_base: process.env.API_BASE_URL || '/api' })],
]);

function handler(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendJson(req, res, 405, { error: 'method not allowed', method: req.method }, { Allow: 'GET, HEAD' });
  }
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/' || url.pathname === '/index.html') {
    return send(req, res, 200, INDEX_HTML, 'text/html; charset=utf-8');
  }
  const route = JSON_ROUTES.get(url.pathname);
  if (!route) return sendJson(req, res, 404, { error: 'not found', path: url.pathname });
  return sendJson(req, res, 200, route(url));
}

function createServer() {
  return http.createServer(handler);
}

function start({ port = Number(process.env.PORT) || DEFAULT_PORT, host = process.env.HOST || '0.0.0.0' } = {}) {
  const server = createServer();
  // As PID 1 in a container, node ignores SIGTERM unless it handles it.
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

module.exports = { createServer, handler, start, SERVICE };

if (require.main === module) {
  start();
}
