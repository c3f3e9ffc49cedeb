// Writes Jest's pass/fail counts to .tmp/jest-summary.json, so .ci/run can print them on one line.
const fs = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const dir = path.resolve(__dirname, '../../.tmp');
    fs.mkdirSync(dir, { recursive: true });
    const summary = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
    };
    fs.writeFileSync(path.join(dir, 'jest-summary.json'), JSON.stringify(summary));
  }
}

module.exports = SummaryReporter;
