// The "cluster" project: every gateway of the test runs on the local Redis Cluster.
process.env.SKADI_TEST_REDIS_CLUSTER ||= process.env.SKADI_TEST_CLUSTER_NODES || '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003';
