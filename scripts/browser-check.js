#!/usr/bin/env node
// Opens report.html files in headless Chromium at 375 and 1400 px wide and fails on any console
// error or uncaught exception, any broken image, and any element that overflows the viewport
// horizontally (outside a scrolling container); saves a screenshot of each page at each width.
// Talks to Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe), so it needs
// nothing but Node (>= 18) and a Chromium binary: no npm packages.
//
//   node scripts/browser-check.js --chromium /usr/bin/chromium --out DIR report.html...
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const WIDTHS = [375, 1400];
const HEIGHT = 900;
const MAX_SHOT_HEIGHT = 8000;

function parseArgs(argv) {
  const args = { chromium: 'chromium', out: 'target/browser-check', pages: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--chromium') args.chromium = argv[++i];
    else if (argv[i] === '--out') args.out = argv[++i];
    else args.pages.push(argv[i]);
  }
  if (args.pages.length === 0) {
    console.error('usage: browser-check.js [--chromium BIN] [--out DIR] report.html...');
    process.exit(2);
  }
  return args;
}

/** A DevTools protocol connection over Chromium's pipe (fd 3 in, fd 4 out, NUL-separated). */
class Cdp {
  constructor(proc) {
    this.writer = proc.stdio[3];
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    let buffer = '';
    proc.stdio[4].on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end;
      while ((end = buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
        this.dispatch(message);
      }
    });
  }

  dispatch(message) {
    if (message.id !== undefined && this.pending.has(message.id)) {
      const { resolve, reject } = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) reject(new Error(JSON.stringify(message.error)));
      else resolve(message.result);
      return;
    }
    for (const listener of this.listeners) listener(message);
  }

  send(method, params = {}, sessionId) {
    const id = this.nextId++;
    const message = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    this.writer.write(JSON.stringify(message) + '\0');
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Resolves with the first event `method` of `sessionId`, or rejects after `ms`. */
  once(method, sessionId, ms) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${method}`)), ms);
      const listener = (m) => {
        if (m.method === method && m.sessionId === sessionId) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== listener);
          resolve(m.params);
        }
      };
      this.listeners.push(listener);
    });
  }
}

// Runs in the page: broken images and elements sticking out of the viewport.
const INSPECT = (viewport) => `((width) => {
  const broken = [...document.images]
    .filter((img) => !img.complete || img.naturalWidth === 0)
    .map((img) => img.src.slice(0, 80));
  const clipped = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX)) return p !== document.documentElement && p !== document.body;
    }
    return false;
  };
  const overflowing = [...document.body.querySelectorAll('*')]
    .filter((el) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && (r.right > width + 1 || r.left < -1) && !clipped(el);
    })
    .slice(0, 10)
    .map((el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className : '') +
      ' [' + Math.round(el.getBoundingClientRect().left) + '..' + Math.round(el.getBoundingClientRect().right) + '] ' +
      (el.textContent || '').trim().slice(0, 60));
  return {
    width,
    scrollWidth: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
    broken,
    overflowing,
    images: document.images.length,
    svgs: document.querySelectorAll('svg').length,
    charts: document.querySelectorAll('[role=img][aria-label]').length,
  };
})(${viewport})`;

async function checkPage(cdp, file, width, outDir) {
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const errors = [];
  const listener = (m) => {
    if (m.sessionId !== sessionId) return;
    if (m.method === 'Runtime.consoleAPICalled' && ['error', 'assert'].includes(m.params.type)) {
      errors.push('console.' + m.params.type + ': ' + m.params.args.map((a) => a.value ?? a.description).join(' '));
    } else if (m.method === 'Runtime.exceptionThrown') {
      errors.push('exception: ' + (m.params.exceptionDetails.exception?.description || m.params.exceptionDetails.text));
    } else if (m.method === 'Log.entryAdded' && m.params.entry.level === 'error') {
      errors.push('log: ' + m.params.entry.text + (m.params.entry.url ? ' (' + m.params.entry.url + ')' : ''));
    }
  };
  cdp.listeners.push(listener);
  await cdp.send('Runtime.enable', {}, sessionId);
  await cdp.send('Log.enable', {}, sessionId);
  await cdp.send('Page.enable', {}, sessionId);
  await cdp.send('Emulation.setDeviceMetricsOverride',
    { width, height: HEIGHT, deviceScaleFactor: 1, mobile: width < 600 }, sessionId);
  const loaded = cdp.once('Page.loadEventFired', sessionId, 30000);
  const url = 'file://' + path.resolve(file);
  const nav = await cdp.send('Page.navigate', { url }, sessionId);
  if (nav.errorText) errors.push('navigation: ' + nav.errorText);
  await loaded;
  await new Promise((r) => setTimeout(r, 300));
  const { result } = await cdp.send('Runtime.evaluate', { expression: INSPECT(width), returnByValue: true }, sessionId);
  const info = result.value;
  const shotHeight = Math.min(info.height, MAX_SHOT_HEIGHT);
  const shot = await cdp.send('Page.captureScreenshot', {
    format: 'png', captureBeyondViewport: true,
    clip: { x: 0, y: 0, width, height: shotHeight, scale: 1 },
  }, sessionId);
  const name = path.basename(path.dirname(path.resolve(file))) + `-${width}.png`;
  const shotPath = path.join(outDir, name);
  fs.writeFileSync(shotPath, Buffer.from(shot.data, 'base64'));
  cdp.listeners = cdp.listeners.filter((l) => l !== listener);
  await cdp.send('Target.closeTarget', { targetId });
  const problems = [...errors];
  for (const b of info.broken) problems.push('broken image: ' + b);
  if (info.scrollWidth > info.width) problems.push(`page is ${info.scrollWidth}px wide in a ${info.width}px viewport`);
  for (const o of info.overflowing) problems.push('overflows the viewport: ' + o);
  return { file, width, problems, shotPath, info };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.out, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-audit-browser-'));
  const proc = spawn(args.chromium, [
    '--headless', '--remote-debugging-pipe', '--no-sandbox', '--disable-gpu',
    '--no-first-run', '--no-default-browser-check', '--hide-scrollbars',
    '--allow-file-access-from-files', `--user-data-dir=${profile}`, 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const cdp = new Cdp(proc);
  let failed = 0;
  try {
    for (const file of args.pages) {
      if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
      for (const width of WIDTHS) {
        const r = await checkPage(cdp, file, width, args.out);
        const status = r.problems.length ? 'FAIL' : 'ok';
        console.log(`${status} ${file} at ${width}px: ${r.info.svgs} charts (${r.info.charts} with alt text), ` +
          `${r.info.images} images, page ${r.info.scrollWidth}x${r.info.height}px; screenshot ${r.shotPath}`);
        for (const p of r.problems) console.log('    ' + p);
        if (r.problems.length) failed++;
      }
    }
    const exited = new Promise((r) => proc.once('exit', r));
    await cdp.send('Browser.close').catch(() => {});
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  } catch (e) {
    console.error('browser check could not run: ' + e.message + (stderr ? '\n' + stderr.slice(-2000) : ''));
    proc.kill();
    process.exit(2);
  } finally {
    proc.kill();
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      console.log(`note: could not remove ${profile}: ${e.message}`);
    }
  }
  if (failed) {
    console.log(`browser check failed: ${failed} page/width combination(s) with problems`);
    process.exit(1);
  }
  console.log('browser check passed');
}

main();
