"""A terminal in the page: xterm.js (with its fit, search and web-links addons, served from
this server's ``/components/`` route, never a CDN) over the console websocket.

Panel's own ``Terminal`` widget polls every 50 ms, sends at most 20 KB a tick, keeps the
whole history in one string and cannot reattach; this component instead talks to
``/ws/console/{name}`` directly: output arrives as binary frames, each acknowledged once
xterm.js has drawn it (the server's flow control, console/terminal.py), keys go back as
binary frames, and a resize tells the server the terminal's size. A reload opens a new
websocket to the same console and is sent its recent screen.

With ``recording`` set it plays a shell's recording (asciicast v2) instead.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent


class XTerm(JSComponent):
    console = param.String(default="", doc="the console to attach to")
    mode = param.Selector(default="read", objects=["read", "write"],
                          doc="write: keys are sent (the server checks the role)")
    recording = param.String(default="", doc="a recording to play instead (admins)")
    dark = param.Boolean(default=False)
    status = param.String(default="", doc="what the terminal says of its connection")
    inject = param.String(default="", doc="text to type into the terminal (a suggestion "
                          "picked beside it); sent once, then cleared")

    __javascript__ = ["xterm/xterm.js", "xterm/addon-fit.js", "xterm/addon-search.js",
                      "xterm/addon-web-links.js"]
    _stylesheets = ["xterm/xterm.css", """
:host { display: block; }
.wb-term { display: flex; flex-direction: column; height: 100%; min-height: 200px; }
.wb-bar { display: flex; gap: 6px; align-items: center; padding: 4px 2px 6px;
          font: 12px system-ui, sans-serif; color: #667; }
.wb-bar input { font: 12px system-ui, sans-serif; padding: 2px 6px; width: 180px;
                border: 1px solid #ccd; border-radius: 4px; }
.wb-bar button { font: 12px system-ui, sans-serif; padding: 1px 8px; border-radius: 4px;
                 border: 1px solid #ccd; background: transparent; color: inherit;
                 cursor: pointer; }
.wb-state { margin-left: auto; }
.wb-screen { flex: 1; min-height: 160px; padding: 4px; border-radius: 6px;
             background: #fbfbfd; border: 1px solid #dde; }
.wb-dark .wb-screen { background: #1e1f24; border-color: #333; }
.wb-dark .wb-bar { color: #aab; }
.wb-dark .wb-bar input { background: #2a2b31; color: #dde; border-color: #444; }
"""]

    _esm = """
const LIGHT = {background: '#fbfbfd', foreground: '#1e1f24', cursor: '#3b5bdb',
               selectionBackground: '#c5d3f6'}
const DARK = {background: '#1e1f24', foreground: '#e3e4e8', cursor: '#91a7ff',
              selectionBackground: '#3b4256'}

export function render({ model, el }) {
  const box = document.createElement('div')
  box.className = 'wb-term' + (model.dark ? ' wb-dark' : '')
  const bar = document.createElement('div')
  bar.className = 'wb-bar'
  const find = document.createElement('input')
  find.placeholder = 'search the screen'
  find.setAttribute('aria-label', 'search the terminal')
  const prev = document.createElement('button')
  prev.textContent = '↑'
  prev.title = 'previous match'
  const next = document.createElement('button')
  next.textContent = '↓'
  next.title = 'next match'
  const state = document.createElement('span')
  state.className = 'wb-state'
  bar.append(find, prev, next, state)
  const screen = document.createElement('div')
  screen.className = 'wb-screen'
  box.append(bar, screen)
  el.append(box)

  const term = new window.Terminal({
    cursorBlink: true, scrollback: 5000, fontSize: 13,
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
    theme: model.dark ? DARK : LIGHT, disableStdin: model.mode !== 'write',
  })
  const fit = new window.FitAddon.FitAddon()
  const search = new window.SearchAddon.SearchAddon()
  term.loadAddon(fit)
  term.loadAddon(search)
  term.loadAddon(new window.WebLinksAddon.WebLinksAddon())
  term.open(screen)
  const refit = () => { try { fit.fit() } catch (e) {} }
  refit()
  const seek = (back) => {
    if (!find.value) return
    const opts = {caseSensitive: false}
    back ? search.findPrevious(find.value, opts) : search.findNext(find.value, opts)
  }
  find.addEventListener('keydown', (e) => { if (e.key === 'Enter') seek(e.shiftKey) })
  prev.addEventListener('click', () => seek(true))
  next.addEventListener('click', () => seek(false))

  let ws = null
  let closedByUs = false
  const say = (text) => { state.textContent = text; model.status = text }
  const encoder = new TextEncoder()

  async function attach() {
    if (!model.console) { say('no console'); return }
    let xsrf = ''
    try {
      const s = await fetch('/api/session', {credentials: 'same-origin'})
      if (s.ok) xsrf = (await s.json()).xsrf || ''
    } catch (e) {}
    const q = new URLSearchParams({mode: model.mode, cols: term.cols, rows: term.rows})
    if (xsrf) q.set('xsrf', xsrf)
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
    ws = new WebSocket(`${scheme}://${location.host}/ws/console/` +
                       `${encodeURIComponent(model.console)}?${q}`)
    ws.binaryType = 'arraybuffer'
    say('connecting…')
    ws.onopen = () => say(model.mode === 'write' ? 'attached · typing' : 'attached · read-only')
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') {
        const data = new Uint8Array(ev.data)
        // acknowledged once drawn: the server sends no more than it is told was drawn
        term.write(data, () => {
          if (ws && ws.readyState === 1) ws.send(JSON.stringify({type: 'ack', bytes: data.length}))
        })
        return
      }
      const msg = JSON.parse(ev.data)
      if (msg.type === 'exit') say(`ended (exit ${msg.code === null ? '?' : msg.code})`)
      else if (msg.type === 'closing') say(`closing: ${msg.why}`)
      else if (msg.type === 'refused') say(msg.why)
      else if (msg.type === 'attached') term.reset()
    }
    ws.onclose = (ev) => {
      if (!closedByUs) say(ev.code === 1006 ? 'refused or disconnected' : `closed (${ev.code})`)
    }
  }

  async function play() {
    say('loading the recording…')
    const r = await fetch(`/api/console/recordings/${encodeURIComponent(model.recording)}`,
                          {credentials: 'same-origin'})
    if (!r.ok) { say(`cannot load it: ${r.status}`); return }
    const lines = (await r.text()).split('\\n').filter((l) => l.trim())
    const header = JSON.parse(lines[0])
    if (header.width && header.height) term.resize(header.width, header.height)
    const events = lines.slice(1).map((l) => JSON.parse(l)).filter((e) => e[1] !== 'i')
    say(`playing ${model.recording}`)
    const start = performance.now()
    for (const [t, code, data] of events) {
      const wait = Math.min(t * 1000 - (performance.now() - start), 1000)
      if (wait > 0) await new Promise((done) => setTimeout(done, wait))
      if (code === 'o') term.write(data)
      else if (code === 'r') { const [c, h] = data.split('x').map(Number); term.resize(c, h) }
    }
    say(`played ${model.recording} (${events.length} events)`)
  }

  term.onData((text) => {
    if (ws && ws.readyState === 1 && model.mode === 'write') ws.send(encoder.encode(text))
  })
  term.onResize(({cols, rows}) => {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({type: 'resize', cols, rows}))
  })
  const observer = new ResizeObserver(() => refit())
  observer.observe(screen)
  const reattach = () => {
    closedByUs = true
    if (ws) ws.close()
    closedByUs = false
    term.options.disableStdin = model.mode !== 'write'
    attach()
  }
  model.on('inject', () => {
    const text = model.inject
    if (!text) return
    if (ws && ws.readyState === 1 && model.mode === 'write') {
      ws.send(encoder.encode(text))
      term.focus()
    } else say('press Type to type into it')
    model.inject = ''
  })
  model.on('console', reattach)
  model.on('mode', reattach)
  model.on('remove', () => {
    closedByUs = true
    observer.disconnect()
    if (ws) ws.close()
    term.dispose()
  })
  if (model.recording) play()
  else attach()
  setTimeout(() => { refit(); if (model.mode === 'write') term.focus() }, 50)
}
"""
