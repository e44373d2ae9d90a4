// `node orphan-guard.mjs <pid>`, started with an IPC channel by the process that spawned the JVM
// <pid> (scripts/kafka/cluster.ts): when that process is gone, however it ended (a test killed by
// its timeout, kill -9), the channel closes and the guard SIGKILLs the JVM, so no Kafka broker
// outlives its test. The guard exits by itself once the JVM is gone.
const pid = Number(process.argv[2]);
if (!Number.isInteger(pid) || pid <= 0) {
  process.stderr.write(`orphan-guard: a JVM pid is required, got ${process.argv[2]}\n`);
  process.exit(2);
}
const GONE_POLL_MS = 1000;
const alive = () => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
process.on('disconnect', () => {
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  process.exit(0);
});
setInterval(() => {
  if (!alive()) process.exit(0);
}, GONE_POLL_MS);
