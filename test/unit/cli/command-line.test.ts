import { parseCommandLine } from '../../../src/cli/command-line';
import { CliUsageError, HelpRequested } from '../../../src/cli/common';

const OPTIONS = {
  csv: { type: 'string', multiple: true },
  'max-unconfirmed': { type: 'string' },
  json: { type: 'boolean' },
  'no-announce': { type: 'boolean' },
  port: { type: 'string', short: 'p' },
} as const;

describe('parseCommandLine (commander)', () => {
  it('returns values under the option names, repeated options as lists, and positionals', () => {
    const { values, positionals } = parseCommandLine({
      args: ['promote', '--csv', 'a.csv', '--max-unconfirmed=5', '--csv', 'b.csv', 'v0002', '--json'],
      allowPositionals: true,
      options: OPTIONS,
    });
    expect(values).toEqual({ csv: ['a.csv', 'b.csv'], 'max-unconfirmed': '5', json: true });
    expect(positionals).toEqual(['promote', 'v0002']);
  });

  it('leaves absent options out, so that commands apply their defaults', () => {
    const { values } = parseCommandLine({ args: [], options: OPTIONS });
    expect(values).toEqual({});
  });

  it('reads --no-x as the flag no-x, not as x = false', () => {
    expect(parseCommandLine({ args: ['--no-announce'], options: OPTIONS }).values).toEqual({ 'no-announce': true });
    expect(parseCommandLine({ args: [], options: OPTIONS }).values['no-announce']).toBeUndefined();
  });

  it('knows short flags', () => {
    expect(parseCommandLine({ args: ['-p', '8080'], options: OPTIONS }).values.port).toBe('8080');
  });

  it('takes the common --verbose without a declaration, and answers -h/--help by throwing HelpRequested', () => {
    expect(parseCommandLine({ args: ['--verbose'], options: OPTIONS }).values).toEqual({ verbose: true });
    for (const args of [['-h'], ['--help'], ['--json', '--help']]) {
      expect(() => parseCommandLine({ args, options: OPTIONS })).toThrow(HelpRequested);
    }
  });

  it('refuses unknown options, missing values and unexpected arguments with a CliUsageError', () => {
    expect(() => parseCommandLine({ args: ['--nope'], options: OPTIONS })).toThrow(new CliUsageError("unknown option '--nope'"));
    expect(() => parseCommandLine({ args: ['--csv'], options: OPTIONS })).toThrow(/option '--csv <value>' argument missing/);
    expect(() => parseCommandLine({ args: ['stray'], options: OPTIONS })).toThrow(CliUsageError);
    expect(() => parseCommandLine({ args: ['stray'], options: OPTIONS })).toThrow(/too many arguments/);
  });
});
