#!/usr/bin/env node
// The AWS SDK warns on every start under Node 20; pairgen supports Node 20, so the warning is noise
// (and would land in --log-format json output).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// pairgen is written in TypeScript and run through tsx, so there is no build step to forget.
const { register } = await import('tsx/esm/api');
register();
await import('../src/cli/main.ts');
