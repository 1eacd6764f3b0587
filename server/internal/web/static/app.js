// Liggare's only script: live updates of a site page and reading an
// inspector link's token from the URL fragment. Pages work without it.
(function () {
  'use strict';

  // An inspector link is /inspector#TOKEN: the token never reaches the
  // server in a URL. Put it into the form and drop it from the address bar.
  var secret = document.getElementById('redeem-secret');
  if (secret && location.hash.length > 1) {
    secret.value = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, '', location.pathname);
    var note = document.getElementById('redeem-link');
    if (note) note.hidden = false;
    var code = document.getElementById('code');
    if (code) code.removeAttribute('required');
  }

  // Live attendance: follow the site's event stream and fetch the live
  // fragment again on each change.
  var region = document.getElementById('live');
  if (!region || !window.EventSource || !window.fetch) return;
  var status = document.getElementById('live-status');
  var statusText = status && status.querySelector('.text');
  var reload = status && status.querySelector('a');
  function show(on) {
    if (!status) return;
    statusText.textContent = on ? status.dataset.liveOn : status.dataset.liveOff;
    status.classList.toggle('on', on);
    if (reload) reload.hidden = on;
  }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(region.dataset.fragment, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (r.redirected || r.status !== 200) throw new Error('status ' + r.status);
        return r.text();
      })
      .then(function (html) {
        region.innerHTML = html;
        region.dispatchEvent(new CustomEvent('liggare:updated'));
      })
      .catch(function () { show(false); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  var opened = false;
  var es = new EventSource(region.dataset.events);
  es.addEventListener('open', function () {
    show(true);
    // After a reconnection changes may have been missed.
    if (opened) refresh();
    opened = true;
  });
  es.addEventListener('change', refresh);
  es.addEventListener('expired', function () {
    es.close();
    location.reload();
  });
  es.addEventListener('error', function () {
    show(false);
    if (es.readyState === EventSource.CLOSED) {
      // Refused (the session ended): the page knows what to do.
      setTimeout(function () { location.reload(); }, 3000);
    }
  });
})();
