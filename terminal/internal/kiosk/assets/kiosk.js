// The kiosk screen's live part: it takes "status" and "tap" events from the
// terminal agent (server-sent events, same origin, no network needed) and
// shows each tap for as long as the agent says, then the idle screen.
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var idleTimer = null;

  function text(id, s) { $(id).textContent = s || ''; }

  function showIdle() {
    $('panel').className = 'panel idle';
    $('tap').hidden = true;
    $('idle').hidden = false;
  }

  function showTap(v) {
    $('panel').className = 'panel ' + v.kind;
    $('tap-icon').setAttribute('href', '#i-' + v.icon);
    text('title', v.title);
    text('title-en', v.title_en);
    text('name', v.name);
    text('employer', v.employer);
    text('detail', v.detail);
    text('detail-en', v.detail_en);
    $('idle').hidden = true;
    $('tap').hidden = false;
    document.body.setAttribute('data-seq', String(v.seq));
    clearTimeout(idleTimer);
    idleTimer = setTimeout(showIdle, v.show_ms);
  }

  function showStatus(v) {
    $('status').className = 'status ' + v.kind;
    $('status-icon').setAttribute('href', '#i-' + v.icon);
    text('status-text', v.text);
    text('status-text-en', v.text_en);
    if (v.queue !== undefined) { text('queue', String(v.queue)); }
  }

  function tick() {
    try {
      text('clock', new Intl.DateTimeFormat('sv-SE', {
        timeZone: 'Europe/Stockholm', hour: '2-digit', minute: '2-digit'
      }).format(new Date()));
    } catch (e) {
      var d = new Date();
      text('clock', ('0' + d.getHours()).slice(-2) + ':' + ('0' + d.getMinutes()).slice(-2));
    }
  }

  var ms = Number($('panel').getAttribute('data-show-ms'));
  if (ms > 0) { idleTimer = setTimeout(showIdle, ms); }
  tick();
  setInterval(tick, 1000);

  var es = new EventSource('/events');
  es.addEventListener('status', function (e) {
    document.body.setAttribute('data-live', 'yes');
    showStatus(JSON.parse(e.data));
  });
  es.addEventListener('tap', function (e) { showTap(JSON.parse(e.data)); });
  es.onerror = function () {
    // The agent itself is gone (it reconnects by itself when it is back):
    // taps are not being recorded, so say so plainly.
    document.body.setAttribute('data-live', 'no');
    showStatus({
      kind: 'down', icon: 'warning',
      text: 'Ingen kontakt med terminalprogrammet. Kontakta arbetsledningen.',
      text_en: 'No contact with the terminal program. Contact the site office.'
    });
  };
}());
