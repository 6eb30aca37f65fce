// PMMG N3XUS R3CORDINGS M3DIA 3NGIN3: browser client (N3XUS-SYSTEM-PMMG, phase 11).
// All sound is made here, in the listener's browser, with the Web Audio API:
// oscillator -> low-pass filter -> gain -> analyser -> speakers. No server is involved
// beyond the static file server that delivers this file.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  let ctx = null;
  let graph = null;
  let frame = 0;

  function buildGraph(audio) {
    const osc = audio.createOscillator();
    const filter = audio.createBiquadFilter();
    const gain = audio.createGain();
    const analyser = audio.createAnalyser();
    osc.type = $('waveform').value;
    osc.frequency.value = Number($('frequency').value);
    filter.type = 'lowpass';
    filter.frequency.value = Number($('cutoff').value);
    gain.gain.value = Number($('level').value);
    analyser.fftSize = 1024;
    osc.connect(filter).connect(gain).connect(analyser).connect(audio.destination);
    return { osc, filter, gain, analyser };
  }

  function draw() {
    const canvas = $('scope');
    const g = canvas.getContext('2d');
    const samples = new Uint8Array(graph.analyser.fftSize);
    graph.analyser.getByteTimeDomainData(samples);
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.beginPath();
    for (let i = 0; i < samples.length; i += 1) {
      const x = (i / samples.length) * canvas.width;
      const y = (samples[i] / 255) * canvas.height;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    }
    g.strokeStyle = '#38f2c2';
    g.stroke();
    frame = requestAnimationFrame(draw);
  }

  async function start() {
    const AudioCtx = window.AudioContext || window.webkitAudioContext;
    if (!AudioCtx) {
      $('status').textContent = 'This browser has no Web Audio support.';
      return;
    }
    ctx = ctx || new AudioCtx();
    await ctx.resume();
    graph = buildGraph(ctx);
    graph.osc.start();
    draw();
    $('start').disabled = true;
    $('stop').disabled = false;
    $('status').textContent = `Playing at ${ctx.sampleRate} Hz sample rate.`;
  }

  function stop() {
    if (!graph) return;
    graph.osc.stop();
    graph.osc.disconnect();
    graph = null;
    cancelAnimationFrame(frame);
    $('start').disabled = false;
    $('stop').disabled = true;
    $('status').textContent = 'Stopped.';
  }

  function bindControls() {
    $('start').addEventListener('click', start);
    $('stop').addEventListener('click', stop);
    $('waveform').addEventListener('change', (e) => { if (graph) graph.osc.type = e.target.value; });
    $('frequency').addEventListener('input', (e) => {
      $('frequency-value').textContent = `${e.target.value} Hz`;
      if (graph) graph.osc.frequency.setTargetAtTime(Number(e.target.value), ctx.currentTime, 0.02);
    });
    $('cutoff').addEventListener('input', (e) => {
      $('cutoff-value').textContent = `${e.target.value} Hz`;
      if (graph) graph.filter.frequency.setTargetAtTime(Number(e.target.value), ctx.currentTime, 0.02);
    });
    $('level').addEventListener('input', (e) => {
      if (graph) graph.gain.gain.setTargetAtTime(Number(e.target.value), ctx.currentTime, 0.02);
    });
  }

  document.addEventListener('DOMContentLoaded', bindControls);
}());
