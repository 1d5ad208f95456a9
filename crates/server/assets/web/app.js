// PumpPilot dashboard: the little script that keeps pages live. Every page works without it;
// with it, the state comes from server-sent events (/api/events), falls back to polling
// /api/motor/status and /api/queue when the stream fails, the remaining time counts down, and
// Start/Stop answer at once (an optimistic state, corrected by the server's answer).
'use strict';

(function () {
  var body = document.body;
  var W = {};
  try {
    W = JSON.parse(body.getAttribute('data-words') || '{}');
  } catch (e) {
    W = {};
  }
  var lang = body.getAttribute('data-lang') || 'en';
  var me = body.getAttribute('data-me') || '';
  var live = body.getAttribute('data-live') || '';

  // The browser's zone, so the server writes times as the viewer's clock shows them.
  var tz = String(-new Date().getTimezoneOffset());
  if (document.cookie.split('; ').indexOf('pp_tz=' + tz) < 0) {
    document.cookie = 'pp_tz=' + tz + '; path=/; max-age=31536000; samesite=lax';
  }

  // ---- Words and numbers in the page's language (as web/i18n.rs writes them). ----
  var BN = '০১২৩৪৫৬৭৮৯';
  function digits(s) {
    s = String(s);
    return lang === 'bn' ? s.replace(/[0-9]/g, function (d) { return BN[Number(d)]; }) : s;
  }
  function fill(template) {
    var out = String(template || '');
    for (var i = 1; i < arguments.length; i++) out = out.split('{' + (i - 1) + '}').join(arguments[i]);
    return out;
  }
  function number(n) {
    var s = String(Math.trunc(Math.abs(n)));
    var grouped;
    if (lang === 'bn' && s.length > 3) {
      grouped = s.slice(0, -3).replace(/\B(?=(\d{2})+(?!\d))/g, ',') + ',' + s.slice(-3);
    } else {
      grouped = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    }
    return digits((n < 0 ? '−' : '') + grouped);
  }
  function duration(seconds) {
    var t = Math.abs(Math.round(seconds));
    var h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    var parts = [];
    if (h) parts.push(number(h) + ' ' + W.h);
    if (m) parts.push(number(m) + ' ' + W.min);
    if (s && !h) parts.push(number(s) + ' ' + W.s);
    if (!parts.length) parts.push(number(0) + ' ' + W.min);
    return (seconds < 0 ? '−' : '') + parts.join(' ');
  }
  // Why a run holds, and in HOLD for restart protection when it starts again (counted down).
  function reason(code) {
    var words = (code && W.holdReasons && W.holdReasons[code]) || code || '';
    var m = state && state.motor;
    if (!m || m.state !== 'HOLD' || m.resumeInSeconds === undefined || m.resumeInSeconds === null) return words;
    return words + ' · ' + fill(W.resumesIn, duration(Math.max(0, m.resumeInSeconds - elapsed())));
  }
  function errorWords(code, status) {
    return (code && W.errors && W.errors[code]) || fill(W.errorOther, digits(status || '?'));
  }
  function $(id) {
    return document.getElementById(id);
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function setText(id, text) {
    var node = $(id);
    if (node && node.textContent !== text) node.textContent = text;
  }

  // ---- Small helpers for every page. ----
  document.addEventListener(
    'submit',
    function (event) {
      var form = event.target;
      var question = form.getAttribute('data-confirm');
      if (question && !window.confirm(question)) event.preventDefault();
    },
    true
  );

  Array.prototype.forEach.call(document.querySelectorAll('[data-print]'), function (button) {
    button.addEventListener('click', function () { window.print(); });
  });

  // A receipt as a picture: its lines drawn onto a canvas (in the page's language and fonts),
  // shared as a PNG through the Web Share API where the browser can share files, downloaded
  // otherwise.
  var shareReceipt = $('share-receipt');
  var receiptCard = $('receipt');
  if (shareReceipt && receiptCard && document.createElement('canvas').getContext) {
    shareReceipt.hidden = false;
    shareReceipt.addEventListener('click', function () {
      var status = $('receipt-image-status');
      var say = function (text) { if (status) status.textContent = text; };
      receiptImage(receiptCard).then(function (blob) {
        var name = shareReceipt.getAttribute('data-receipt-image') || 'receipt.png';
        var file = typeof File === 'function' ? new File([blob], name, { type: 'image/png' }) : null;
        var title = (receiptCard.querySelector('h1') || {}).textContent || '';
        if (file && navigator.canShare && navigator.share && navigator.canShare({ files: [file] })) {
          return navigator.share({ files: [file], title: title }).then(function () {
            say(shareReceipt.getAttribute('data-shared'));
          }, function (err) {
            if (!err || err.name !== 'AbortError') download(blob, name);
          });
        }
        download(blob, name);
      });
      function download(blob, name) {
        var url = URL.createObjectURL(blob);
        var a = document.createElement('a');
        a.href = url;
        a.download = name;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        say(shareReceipt.getAttribute('data-saved'));
      }
    });
  }

  /** Draws a receipt card (its title, its facts as label/value pairs, its other lines) as a PNG. */
  function receiptImage(card) {
    var scale = 2, width = 360, pad = 20;
    var font = getComputedStyle(card).fontFamily || 'sans-serif';
    var lines = [];
    var h1 = card.querySelector('h1');
    if (h1) lines.push({ title: h1.textContent });
    Array.prototype.forEach.call(card.children, function (el) {
      if (el.tagName === 'P') lines.push({ text: el.textContent });
      if (el.tagName === 'DL') {
        Array.prototype.forEach.call(el.querySelectorAll('dt'), function (dt) {
          var dd = dt.nextElementSibling;
          lines.push({ label: dt.textContent, value: dd ? dd.textContent : '' });
        });
      }
    });
    var canvas = document.createElement('canvas');
    var ctx = canvas.getContext('2d');
    // Measure first: long lines wrap.
    var rows = [];
    var wrap = function (text, size, weight, maxWidth) {
      ctx.font = weight + ' ' + size + 'px ' + font;
      var words = String(text).trim().split(/\s+/), out = [], line = '';
      words.forEach(function (w) {
        var next = line ? line + ' ' + w : w;
        if (line && ctx.measureText(next).width > maxWidth) { out.push(line); line = w; } else line = next;
      });
      if (line) out.push(line);
      return out;
    };
    lines.forEach(function (l) {
      if (l.title) wrap(l.title, 26, '700', width - 2 * pad).forEach(function (t) { rows.push({ text: t, size: 26, weight: '700', h: 36 }); });
      else if (l.text) wrap(l.text, 15, '400', width - 2 * pad).forEach(function (t) { rows.push({ text: t, size: 15, weight: '400', h: 22, muted: true }); });
      else {
        rows.push({ text: l.label, size: 14, weight: '400', h: 20, muted: true });
        wrap(l.value, 18, '700', width - 2 * pad).forEach(function (t) { rows.push({ text: t, size: 18, weight: '700', h: 28 }); });
      }
    });
    var height = pad * 2 + rows.reduce(function (sum, r) { return sum + r.h; }, 0) + 8;
    canvas.width = width * scale;
    canvas.height = height * scale;
    ctx.scale(scale, scale);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, height);
    ctx.strokeStyle = '#0b3d91';
    ctx.lineWidth = 2;
    ctx.strokeRect(6, 6, width - 12, height - 12);
    ctx.textBaseline = 'top';
    var y = pad;
    rows.forEach(function (r) {
      ctx.font = r.weight + ' ' + r.size + 'px ' + font;
      ctx.fillStyle = r.muted ? '#555555' : '#111111';
      ctx.fillText(r.text, pad, y);
      y += r.h;
    });
    return new Promise(function (resolve) { canvas.toBlob(resolve, 'image/png'); });
  }

  Array.prototype.forEach.call(document.querySelectorAll('[data-copy]'), function (button) {
    button.addEventListener('click', function () {
      var input = $(button.getAttribute('data-copy'));
      if (!input) return;
      input.focus();
      input.select();
      var done = function () { button.textContent = button.getAttribute('data-done') || W.copied; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          if (document.execCommand('copy')) done();
        });
      } else if (document.execCommand('copy')) {
        done();
      }
    });
  });

  function showError(code, status) {
    var box = $('action-error');
    if (!box) {
      box = el('div', 'flash err');
      box.id = 'action-error';
      box.setAttribute('role', 'alert');
      var main = document.querySelector('main');
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = errorWords(code, status);
    box.hidden = false;
  }
  function clearError() {
    var box = $('action-error');
    if (box) box.hidden = true;
    var done = $('action-done');
    if (done) done.hidden = true;
  }
  function showDone(text) {
    var box = $('action-done');
    if (!box) {
      box = el('div', 'flash ok');
      box.id = 'action-done';
      box.setAttribute('role', 'status');
      var main = document.querySelector('main');
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = text;
    box.hidden = false;
  }

  // A request that a dropped link leaves without an answer is given up after this long (the
  // browser would wait for minutes), so the page can say it cannot reach the server.
  var REQUEST_TIMEOUT_MS = 15000;

  // `fetch`, and `read` of its answer, given up together after REQUEST_TIMEOUT_MS. (A browser
  // without AbortController waits as long as it does.)
  function fetchTimed(path, init, read) {
    var abort = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () {
      if (abort) abort.abort();
    }, REQUEST_TIMEOUT_MS);
    if (abort) init.signal = abort.signal;
    return fetch(path, init)
      .then(read)
      .then(
        function (value) {
          clearTimeout(timer);
          return value;
        },
        function (err) {
          clearTimeout(timer);
          throw err;
        }
      );
  }

  function getJSON(path) {
    return fetchTimed(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } }, function (r) {
      if (!r.ok) {
        var err = new Error(path + ' ' + r.status);
        err.status = r.status;
        throw err;
      }
      return r.json();
    });
  }

  // ---- The master's page: the state of the owners on this page, refreshed every 10 s. ----
  var ownersTable = $('owners');
  if (live === 'master' && ownersTable) {
    var tagClass = { RUNNING: 'running', HOLD: 'hold', WAITING: 'waiting' };
    var tagWord = { RUNNING: W.running, HOLD: W.hold, WAITING: W.waiting };
    // The very page of the API the server read for this page.
    var ownersPath = ownersTable.getAttribute('data-api');
    setInterval(function () {
      getJSON(ownersPath).then(function (page) {
        page.admins.forEach(function (o) {
          var row = document.querySelector('tr[data-owner="' + o.id + '"]');
          if (!row) return;
          var state = row.querySelector('.m-state');
          state.replaceChildren(el('span', 'tag ' + (tagClass[o.motorState] || 'idle'), tagWord[o.motorState] || W.idle));
          var device = row.querySelector('.m-device');
          device.replaceChildren(el('span', 'chip ' + (o.deviceOnline ? 'good' : 'bad'), o.deviceOnline ? W.online : W.offline));
          row.querySelector('.m-users').textContent = number(o.userCount);
        });
        setStatus(null);
      }, function (err) {
        if (err.status === 401) window.location.href = '/login';
        else setStatus(W.liveLost);
      });
    }, 10000);
  }

  // ---- The owner's pump page: each device's connection, firmware, update and last-seen time,
  // every 10 s. ----
  // A firmware download moves while the owner watches (its percent, then up to date or failed);
  // the words are the ones the server wrote the page with (web/parts.rs, update_state).
  var UPDATE_CLASS = { UPDATED: 'good', FAILED: 'bad' };
  function drawDevices(devices) {
    devices.forEach(function (d) {
      var box = document.querySelector('.device[data-device="' + d.id + '"]');
      if (!box) return;
      var online = box.querySelector('.d-online');
      if (online) online.replaceChildren(el('span', 'chip ' + (d.online ? 'good' : 'bad'), d.online ? W.pumpConnected : W.pumpNotConnected));
      var seen = box.querySelector('.d-seen');
      if (seen) seen.textContent = d.lastSeenAt ? dateTimeIn(d.lastSeenAt, Number(seen.getAttribute('data-zone')) || 0) : W.neverSeen;
      var firmware = box.querySelector('.d-firmware');
      if (!firmware) return;
      var nodes = [el('span', 'd-version', d.firmware || '—')];
      if (d.updateState) {
        var words = (W.updateStates && W.updateStates[d.updateState]) || d.updateState;
        var chip = el('span', 'chip update ' + (UPDATE_CLASS[d.updateState] || 'warn'), fill(words, d.updateTo || '', number(d.updatePercent || 0)));
        chip.setAttribute('data-update', d.updateState);
        nodes.push(document.createTextNode(' '), chip);
      }
      firmware.replaceChildren.apply(firmware, nodes);
    });
  }
  if (live === 'owner' && document.querySelector('.device[data-device]')) {
    setInterval(function () {
      if (document.hidden) return;
      getJSON('/api/admin/devices').then(drawDevices, function (err) {
        if (err.status === 401) window.location.href = '/login';
      });
    }, 10000);
  }

  // The time of day as the server writes it (web/i18n.rs, time_of_day): "8:49 PM" / "রাত ৮:৪৯".
  function clock(hour, minute) {
    var hm = (hour % 12 === 0 ? 12 : hour % 12) + ':' + (minute < 10 ? '0' : '') + minute;
    if (lang !== 'bn') return hm + ' ' + (hour < 12 ? 'AM' : 'PM');
    var part = hour >= 4 && hour < 6 ? 'ভোর' : hour >= 6 && hour < 12 ? 'সকাল' : hour >= 12 && hour < 15 ? 'দুপুর'
      : hour >= 15 && hour < 18 ? 'বিকাল' : hour >= 18 && hour < 20 ? 'সন্ধ্যা' : 'রাত';
    return part + ' ' + digits(hm);
  }
  function timeOfDay(date) {
    return clock(date.getHours(), date.getMinutes());
  }
  // A time from the API as the server writes it in the zone `minutes` east of UTC (web/i18n.rs,
  // date_time): "27 Nov 2026, 8:49 PM" / "২৭ নভেম্বর ২০২৬, রাত ৮:৪৯".
  function dateTimeIn(iso, minutes) {
    var t = new Date(Date.parse(iso) + minutes * 60000);
    if (isNaN(t.getTime())) return '';
    var month = (W.months || [])[t.getUTCMonth()] || String(t.getUTCMonth() + 1);
    return digits(t.getUTCDate() + ' ' + month + ' ' + t.getUTCFullYear()) + ', ' + clock(t.getUTCHours(), t.getUTCMinutes());
  }

  // The bar under the tabs: nothing while all is well; when the server is gone, since when the
  // page's state dates; when it is back, a "back online" that goes away by itself.
  var lost = false;
  var lastGood = Date.now();
  var backUntil = 0;
  function setStatus(text) {
    var bar = $('live-status');
    if (!bar) return;
    var now = Date.now();
    var wasLost = lost;
    if (text === W.liveLost) {
      lost = true;
      text = fill(W.liveLostAsOf, timeOfDay(new Date(lastGood)));
    } else {
      lastGood = now;
      if (lost) {
        lost = false;
        backUntil = now + 4000;
        setTimeout(function () {
          if (!lost) setStatus(null);
        }, 4100);
      }
      if (now < backUntil) text = W.backOnline;
    }
    bar.className = 'live-status' + (lost ? ' lost' : text === W.backOnline ? ' back' : '');
    bar.hidden = !text;
    if (text) bar.textContent = text;
    // The state greyed, its clocks stopped, or both back, at once rather than at the next beat.
    if (lost !== wasLost) render();
  }

  if (live !== 'farmer' && live !== 'owner') return;

  // ---- Live state: {motor, me, device, queue}, from the stream or from polling. ----
  var state = null;
  var stateAt = 0;
  var pending = null; // 'start' or 'stop' while the server has not answered

  function received(next) {
    state = next;
    stateAt = Date.now();
    render();
    bell(next.unread);
  }

  // The bell's unread count, from the event stream (a polled state has none: the page's stays).
  function bell(unread) {
    if (typeof unread !== 'number') return;
    var link = document.querySelector('a.bell');
    if (!link) return;
    var count = document.getElementById('bell-count');
    if (unread === 0) {
      if (count) count.parentNode.removeChild(count);
      return;
    }
    if (!count) {
      count = document.createElement('span');
      count.className = 'bell-count';
      count.id = 'bell-count';
      link.appendChild(count);
    }
    count.textContent = digits(String(unread));
  }

  // Seconds since the state came; while the server cannot be reached, the clocks stop where the
  // picture dates from (the bar says "as of" that time), as the app's do.
  function elapsed() {
    return Math.max(0, Math.floor(((lost ? lastGood : Date.now()) - stateAt) / 1000));
  }

  // Time passes only while the motor runs; in HOLD the remaining time is frozen.
  function ticking(seconds) {
    if (seconds === undefined || seconds === null) return 0;
    return state.motor.state === 'RUNNING' ? Math.max(0, seconds - elapsed()) : seconds;
  }

  // "2 min 55 s left": a remaining time with its units.
  function left(seconds) {
    return fill(W.timeLeft, duration(Math.max(0, seconds || 0)));
  }

  // The server's estimate for a place in line, counted down with the run ahead; while that run
  // is paused it is only a lower bound.
  function estimate(entry) {
    var ahead = state.motor.remainingSeconds || 0;
    var seconds = Math.max(0, (entry.estimatedWaitSeconds || 0) - (ahead - ticking(ahead)));
    return [seconds, state.motor.state !== 'HOLD'];
  }

  // The farmer's own state first (me.state, from the server), the motor second.
  function farmerPanel() {
    var e = state.me.entry;
    var m = state.motor;
    var mine = state.me.state;
    if (mine === 'RUNNING' && e) return ['running', W.running, left(ticking(e.remainingSeconds)), W.yourRun, ''];
    if (mine === 'HOLD' && e) return ['hold', W.hold, reason(e.holdReason), left(e.remainingSeconds), W.yourRunHeld];
    if (mine === 'WAITING' && e) {
      var p = e.position || 1;
      var est = estimate(e);
      // A wait is told in whole minutes (rounded up): seconds would only be noise.
      if (est[0] >= 60) est[0] = Math.ceil(est[0] / 60) * 60;
      return [
        'waiting',
        W.waiting + ' ' + fill(W.waitingNumber, number(p)),
        p === 1 ? W.waitingNext : '',
        fill(est[1] ? W.waitAbout : W.waitAtLeast, duration(est[0])),
        m.state === 'HOLD' ? W.waitPaused : '',
      ];
    }
    var motor = W.motorFree;
    if (m.state === 'RUNNING') motor = W.motorBusy + ' · ' + left(ticking(m.remainingSeconds));
    if (m.state === 'HOLD') motor = W.motorBusyHold + ' · ' + reason(m.holdReason);
    return ['idle', W.idle, W.notInLine, motor, ''];
  }

  function ownerPanel() {
    var m = state.motor;
    var name = state.queue.active ? state.queue.active.userName : '';
    if (m.state === 'RUNNING') return ['running', W.running, fill(W.runningFor, name), left(ticking(m.remainingSeconds)), ''];
    if (m.state === 'HOLD') {
      return ['hold', W.hold, reason(m.holdReason), fill(W.runOf, name) + ' · ' + left(m.remainingSeconds), ''];
    }
    return ['idle', W.idle, W.nobodyRunning, '', ''];
  }

  function drawPanel(p) {
    var panel = $('state');
    if (!panel) return;
    // Greyed while the server cannot be reached: what it shows is as of the bar's time.
    var cls = 'state state-' + p[0] + (pending ? ' pending' : '') + (lost ? ' stale' : '');
    if (panel.className !== cls) panel.className = cls;
    var word = p[1];
    if (pending === 'start') word = W.starting;
    if (pending === 'stop') word = W.stopping;
    setText('state-word', word);
    setText('state-detail', p[2]);
    setText('state-extra', p[3]);
    setText('state-note', p[4]);
  }

  // The device in one word: the status the server derived (never two lights that disagree).
  var DEVICE_CLASS = { PUMPING: 'good', READY: 'good', SWITCHING_ON: 'warn', SWITCHING_OFF: 'warn' };
  function drawDevice() {
    var node = $('device-status');
    if (!node) return;
    var status = state.device.status;
    var cls = 'chip ' + (DEVICE_CLASS[status] || 'bad');
    if (node.className !== cls) node.className = cls;
    node.setAttribute('data-status', status);
    setText('device-status', (W.deviceStatuses && W.deviceStatuses[status]) || status);
  }

  var TAG_CLASS = { RUNNING: 'running', HOLD: 'hold', WAITING: 'waiting' };
  var TAG_WORD = { RUNNING: 'running', HOLD: 'hold', WAITING: 'waiting' };

  function nameOf(entry) {
    var name = el('span', 'q-name', entry.userName);
    if (entry.userId === me) name.textContent += ' (' + W.you + ')';
    return name;
  }

  var drawnQueue = '';

  function drawQueue() {
    var box = $('queue-body');
    if (!box) return;
    var q = state.queue;
    // Rebuilt only when what it shows changed (the ticker runs four times a second).
    var activeLeft = q.active && q.active.remainingSeconds !== undefined ? left(ticking(q.active.remainingSeconds)) : '';
    var key = JSON.stringify([q, activeLeft]);
    if (key === drawnQueue) return;
    drawnQueue = key;
    var nodes = [el('h3', null, W.nowRunning)];
    if (q.active) {
      var p = el('p', 'q-active');
      p.appendChild(nameOf(q.active));
      p.appendChild(document.createTextNode(' '));
      p.appendChild(el('span', 'tag ' + (TAG_CLASS[q.active.status] || 'idle'), W[TAG_WORD[q.active.status]] || W.idle));
      if (q.active.remainingSeconds !== undefined && q.active.remainingSeconds !== null) {
        p.appendChild(document.createTextNode(' '));
        p.appendChild(el('span', 'q-left', left(ticking(q.active.remainingSeconds))));
      }
      nodes.push(p);
    } else {
      nodes.push(el('p', 'muted', W.nobodyRunning));
    }
    nodes.push(el('h3', null, W.waitingList));
    if (!q.waiting.length) {
      nodes.push(el('p', 'muted', W.nobodyWaiting));
    } else {
      var list = el('ol', 'q-wait');
      q.waiting.forEach(function (e) {
        var li = el('li', e.userId === me ? 'me' : '');
        li.appendChild(el('span', 'pos', '#' + number(e.position || 0)));
        li.appendChild(document.createTextNode(' '));
        li.appendChild(nameOf(e));
        if (e.requestedMinutes) {
          li.appendChild(document.createTextNode(' '));
          li.appendChild(el('span', 'muted', fill(W.upTo, number(e.requestedMinutes) + ' ' + W.min)));
        }
        list.appendChild(li);
      });
      nodes.push(list);
    }
    box.replaceChildren.apply(box, nodes);
  }

  function drawFarmerControls() {
    var e = state.me.entry;
    var mine = !!e;
    var inLine = mine && e.status === 'WAITING';
    var balance = state.me.availableSeconds;
    if (e && e.status === 'RUNNING') balance = Math.max(0, balance - elapsed());
    var broke = balance <= 0;
    var form = $('motor-form');
    var button = $('motor-button');
    if (form && button) {
      form.setAttribute('action', mine ? form.getAttribute('data-stop') : form.getAttribute('data-start'));
      var cls = 'big ' + (mine ? 'stop' : 'go');
      if (button.className !== cls) button.className = cls;
      setText('motor-button', mine ? (inLine ? W.leaveQueue : W.stop) : state.motor.state === 'IDLE' ? W.start : W.joinQueue);
      // Leaving the line asks first (the place is lost); Stop and Start do not.
      if (inLine && !pending) form.setAttribute('data-confirm', form.getAttribute('data-leave'));
      else form.removeAttribute('data-confirm');
      button.disabled = !!pending || (!mine && broke);
      var runFor = $('run-for');
      if (runFor) runFor.hidden = mine;
    }
    setText('balance-value', duration(balance));
    var warn = $('no-minutes');
    if (warn) warn.hidden = mine || !broke;
  }

  function render() {
    if (!state) return;
    if (live === 'farmer') {
      drawPanel(farmerPanel());
      drawFarmerControls();
    } else {
      drawPanel(ownerPanel());
      var stop = $('admin-stop-form');
      if (stop) stop.hidden = !state.queue.active;
      // The Stop names the run shown: sent twice, it finds that run ended and stops no other.
      var entry = $('admin-stop-entry');
      if (entry) entry.value = state.queue.active ? state.queue.active.id : '';
    }
    drawDevice();
    drawQueue();
  }

  // A quarter second keeps the countdown within a beat of the server's clock.
  setInterval(render, 250);

  // ---- The stream, and polling while it fails. ----
  // The server sends a state at least every 15 s: a stream silent for SILENT_MS is gone (a link
  // that dropped without a word leaves it open and mute for minutes). It is opened anew after a
  // pause that doubles from 3 s to a minute until a stream speaks; the page polls meanwhile.
  var SILENT_MS = 20000;
  var source = null;
  var opened = 0;
  // When the open stream last brought a state; 0 while it has brought none.
  var lastEvent = 0;
  var pause = 3000;
  var retry = null;
  var lastPoll = 0;
  var polling = false;

  function streamHealthy() {
    return !!source && source.readyState === 1 && lastEvent > 0 && Date.now() - lastEvent < SILENT_MS;
  }

  function connect() {
    retry = null;
    if (!window.EventSource) return;
    source = new EventSource('/api/events');
    opened = Date.now();
    lastEvent = 0;
    source.addEventListener('state', function (event) {
      lastEvent = Date.now();
      pause = 3000;
      setStatus(null);
      try {
        received(JSON.parse(event.data));
      } catch (e) {
        // a broken event: the next one (or a poll) brings the state
      }
    });
    source.onerror = function () {
      // Closed for good (the session ended, say): poll, and try the stream again later.
      if (source && source.readyState === 2) dropStream();
    };
  }

  function dropStream() {
    if (source) source.close();
    source = null;
    lastEvent = 0;
    if (!retry) retry = setTimeout(connect, pause);
    pause = Math.min(pause * 2, 60000);
  }

  function poll() {
    if (polling) return;
    polling = true;
    lastPoll = Date.now();
    Promise.all([getJSON('/api/motor/status'), getJSON('/api/queue')])
      .then(function (answers) {
        var next = answers[0];
        next.queue = answers[1];
        received(next);
        setStatus(streamHealthy() ? null : W.livePolling);
      })
      .catch(function (err) {
        if (err.status === 401) window.location.href = '/login';
        else setStatus(W.liveLost);
      })
      .then(function () {
        polling = false;
      });
  }

  var lastTick = Date.now();
  setInterval(function () {
    var now = Date.now();
    // A page that slept (a phone put the browser away, a laptop's lid closed) heard nothing
    // meanwhile: its silence says nothing of the link.
    var awake = now - lastTick < 5000;
    lastTick = now;
    if (source && now - (lastEvent || opened) >= SILENT_MS) {
      // Silent past the server's promise. A stream that had spoken, heard by a page awake all
      // along, means the link dropped: said at once, not after the poll that follows has waited
      // out its own timeout too. Else the polls tell (a proxy may hold a stream's events back).
      if (lastEvent && awake) setStatus(W.liveLost);
      dropStream();
    }
    if (!streamHealthy() && now - lastPoll >= 3000) poll();
  }, 1000);
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) poll();
  });
  connect();

  // ---- Start and Stop without a page load. ----
  var motorForm = $('motor-form');
  if (motorForm) {
    motorForm.addEventListener('submit', function (event) {
      if (event.defaultPrevented) return;
      event.preventDefault();
      if (pending) return;
      var action = motorForm.getAttribute('action');
      var starting = /\/start$/.test(action);
      pending = starting ? 'start' : 'stop';
      clearError();
      render();
      var button = $('motor-button');
      if (button) button.disabled = true;
      // Given up after 15 s like every request (the button waits no longer): the next state
      // says whether it was made.
      fetchTimed(
        action,
        {
          method: 'POST',
          credentials: 'same-origin',
          headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(new FormData(motorForm)).toString(),
        },
        function (r) {
          return r.json().then(
            function (json) { return [r.status, json]; },
            function () { return [r.status, null]; }
          );
        }
      )
        .then(function (answer) {
          var status = answer[0], json = answer[1];
          if (status === 401) {
            window.location.href = '/login';
            return;
          }
          if (status < 200 || status >= 300) {
            showError(json && json.error ? json.error.code : null, status);
          } else if (state) {
            // The server's answer, until the next state event says everything.
            state.me.entry = starting ? json : null;
            if (!starting && typeof json.availableSeconds === 'number') state.me.availableSeconds = json.availableSeconds;
            state.me.state = starting ? json.status : 'IDLE';
            if (!starting && json.endReason === 'LEFT_QUEUE') showDone(W.youLeft);
            stateAt = Date.now();
          }
        })
        .catch(function () {
          showError('OFFLINE');
        })
        .then(function () {
          pending = null;
          render();
          poll();
        });
    });
  }
})();
