#!/usr/bin/env node
/** `skadi-agent`: the daemon that runs on a server, pulls jobs from Skadi and runs only what its config allows. */
import { Command } from 'commander';
import pino from 'pino';
import { Agent, InvalidTokenError, type AgentLogger } from '../sdk';
import { AgentConfigError, deploymentWarnings, findConfigFile, loadAgentConfig, writeTokenToConfig } from './config';
import { createShellHandler } from './handler';
import { helpText } from './plan';

const program = new Command();
program
  .name('skadi-agent')
  .description('Pulls jobs from a Skadi server and runs the shortcuts, commands and templates its config file allows.')
  .version(require('../../../package.json').version)
  .argument('[token]', 'write this agent token into the config file (as the original `skadi <token>`), then exit')
  .option(
    '-c, --config <file>',
    'config file (default /etc/skadi/skadi.yml, then ./skadi.yml: the system file first, unlike the original agent, so that the working directory cannot change what runs)',
  )
  .option('--check', 'validate the config file, print what it allows, and exit')
  .action(async (token: string | undefined, opts: { config?: string; check?: boolean }) => {
    const file = findConfigFile(opts.config);
    if (token !== undefined) {
      writeTokenToConfig(file, token);
      console.log(`${file}: token written; start the agent with: skadi-agent${opts.config ? ` --config ${file}` : ''}`);
      return;
    }
    const config = loadAgentConfig(file);
    const warnings = [...config.warnings, ...deploymentWarnings(file, config)];
    if (opts.check) {
      for (const warning of warnings) console.error(`warning: ${warning}`);
      console.log(`${file}: OK (server ${config.server})\n${helpText(config)}`);
      return;
    }
    const log = pino({ level: config.debug ? 'debug' : 'info', base: { svc: 'skadi-agent' } });
    for (const warning of warnings) log.warn(warning);
    const sdkLog: AgentLogger = {
      debug: (msg, fields) => log.debug(fields ?? {}, msg),
      info: (msg, fields) => log.info(fields ?? {}, msg),
      warn: (msg, fields) => log.warn(fields ?? {}, msg),
      error: (msg, fields) => log.error(fields ?? {}, msg),
    };
    const agent = new Agent({
      server: config.server,
      token: config.token,
      concurrency: config.concurrency,
      logger: sdkLog,
      userAgent: 'skadi-agent',
    });
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: finishing the running job');
      void agent.stop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    log.info(
      {
        config: file,
        server: config.server,
        shortcuts: config.shortcuts.length,
        commands: config.commands.length,
        templates: config.templates.length,
      },
      'skadi-agent starting',
    );
    await agent.start(createShellHandler(config, log));
  });

program.parseAsync(process.argv).catch((err) => {
  if (err instanceof AgentConfigError) {
    console.error(`skadi-agent: ${err.message}`);
    process.exitCode = 2;
  } else if (err instanceof InvalidTokenError) {
    console.error(`skadi-agent: ${err.message}`);
    process.exitCode = 3;
  } else {
    console.error(`skadi-agent: ${err?.stack ?? err}`);
    process.exitCode = 1;
  }
});
