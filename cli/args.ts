// A small argument parser driven by per-command specs, so every command gets `--help` and the
// same error messages for free.

export interface OptionSpec {
  /** Long name without dashes: `engine` for `--engine`. */
  name: string;
  /** Short alias without the dash: `o` for `-o`. */
  short?: string;
  /** Name of the value, when the option takes one (`E`, `FILE`); absent for a flag. */
  value?: string;
  help: string;
  /** May be given several times (values collected in order). */
  repeat?: boolean;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  options: OptionSpec[];
  /** Positional argument counts accepted. */
  minArgs: number;
  maxArgs: number;
  /** Extra text after the options: exit codes, examples. */
  notes?: string;
}

export interface ParsedArgs {
  flags: Set<string>;
  values: Map<string, string[]>;
  args: string[];
  help: boolean;
}

/** Bad command-line usage: reported with the command's usage line, exit status 64. */
export class UsageError extends Error {}

export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { flags: new Set(), values: new Map(), args: [], help: false };
  const byName = new Map<string, OptionSpec>();
  for (const o of spec.options) {
    byName.set(`--${o.name}`, o);
    if (o.short) byName.set(`-${o.short}`, o);
  }
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '--help' || a === '-h') {
      out.help = true;
      continue;
    }
    if (a === '--') {
      out.args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-' || /^-\d/.test(a)) {
      out.args.push(a);
      continue;
    }
    let inline: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const o = byName.get(a);
    if (!o) throw new UsageError(`unknown option '${a}' for '${spec.name}'`);
    if (o.value === undefined) {
      if (inline !== undefined) throw new UsageError(`option '--${o.name}' takes no value`);
      out.flags.add(o.name);
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new UsageError(`option '--${o.name}' needs a value (${o.value})`);
    const list = out.values.get(o.name) ?? [];
    if (list.length > 0 && !o.repeat) throw new UsageError(`option '--${o.name}' given twice`);
    list.push(v);
    out.values.set(o.name, list);
  }
  if (!out.help) {
    if (out.args.length < spec.minArgs) throw new UsageError(`'${spec.name}' needs ${spec.minArgs === spec.maxArgs ? '' : 'at least '}${spec.minArgs} argument${spec.minArgs === 1 ? '' : 's'}: ${spec.usage}`);
    if (out.args.length > spec.maxArgs) throw new UsageError(`too many arguments for '${spec.name}': ${spec.usage}`);
  }
  return out;
}

export function value(p: ParsedArgs, name: string): string | undefined {
  return p.values.get(name)?.[0];
}

/** A non-negative integer option (decimal, hex `0x..`, `_` separators allowed). */
export function intValue(p: ParsedArgs, name: string): number | undefined {
  const v = value(p, name);
  if (v === undefined) return undefined;
  const s = v.replace(/_/g, '');
  const n = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s, 16) : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`option '--${name}' needs a non-negative integer (got '${v}')`);
  return n;
}

export function helpText(spec: CommandSpec): string {
  const lines = [`usage: ${spec.usage}`, '', spec.summary];
  if (spec.options.length > 0) {
    lines.push('', 'options:');
    const heads = spec.options.map((o) => `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.value ? ` ${o.value}` : ''}`);
    const width = Math.max(...heads.map((h) => h.length), 10);
    spec.options.forEach((o, i) => lines.push(`  ${heads[i].padEnd(width)}  ${o.help}`));
    lines.push(`  ${'-h, --help'.padEnd(width)}  show this help`);
  }
  if (spec.notes) lines.push('', spec.notes);
  return lines.join('\n') + '\n';
}
