// Preloaded into a pushwire node by bench/profile.mjs (node --import ...): SIGUSR2 starts the V8 CPU profiler, the
// next SIGUSR2 stops it and writes $PUSHWIRE_PROF_FILE, so the profile covers the measured window only (no start-up).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const session = new Session();
session.connect();
let running = false;
let windows = 0;
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
process.on('SIGUSR2', async () => {
  if (!running) {
    running = true;
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: Number(process.env.PUSHWIRE_PROF_INTERVAL ?? 200) });
    await post('Profiler.start');
  } else {
    running = false;
    const { profile } = await post('Profiler.stop');
    // "{n}" in the file name numbers the windows (1, 2, ...), so each has its own profile.
    writeFileSync(process.env.PUSHWIRE_PROF_FILE.replace('{n}', String(++windows)), JSON.stringify(profile));
    process.stderr.write('profile written\n');
  }
});
