// pino options for the server. Authorization and X-Api-Key headers are redacted
// wherever they might appear, so a key never reaches the logs even at debug level.

import type { LoggerOptions } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'config.apiKeys',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'relu-serve' },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
  };
}
