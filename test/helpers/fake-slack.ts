/** The fake Slack Web API and signed-request helpers live with the benchmarks, which use them too. */
export * from '../../bench/fake-slack';
