// Starts the local 3-master Redis Cluster for the "cluster" project (a healthy one is left as it is).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

module.exports = async function clusterSetup() {
  if (process.env.SKADI_TEST_CLUSTER_NODES) return; // an external cluster was named: use it as it is
  const run = spawnSync('bash', [path.resolve(__dirname, '../../scripts/redis-cluster.sh'), 'start'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`could not start the Redis Cluster for the tests:\n${run.stdout}${run.stderr}`);
};
