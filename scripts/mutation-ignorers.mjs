// Stryker ignorer: log statements (log.info(...), this.log.warn(...), ctx.state.log?.error(...)) are not mutated.
// What a log line says is for the operator, not a promise of the documentation; mutating it only adds equivalent mutants.
import { PluginKind, declareValuePlugin } from '@stryker-mutator/api/plugin';

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/** True when an expression is `log`, `logger`, or a member chain ending in `.log` / `.logger`. */
function isLogger(node) {
  if (!node) return false;
  if (node.type === 'Identifier') return node.name === 'log' || node.name === 'logger';
  if (node.type === 'MemberExpression' || node.type === 'OptionalMemberExpression') {
    return !node.computed && node.property.type === 'Identifier' && (node.property.name === 'log' || node.property.name === 'logger');
  }
  return false;
}

function isLogCall(node) {
  if (node?.type !== 'CallExpression' && node?.type !== 'OptionalCallExpression') return false;
  const callee = node.callee;
  if (callee.type !== 'MemberExpression' && callee.type !== 'OptionalMemberExpression') return false;
  return !callee.computed && callee.property.type === 'Identifier' && LEVELS.has(callee.property.name) && isLogger(callee.object);
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-statements', {
    shouldIgnore(path) {
      if (path.isExpressionStatement() && isLogCall(path.node.expression)) return 'a log statement: its text and level are not a guarantee';
      return undefined;
    },
  }),
];
