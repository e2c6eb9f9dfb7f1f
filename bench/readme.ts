// Rewrites the README's benchmark section: only the text between `<!-- bench:start -->` and
// `<!-- bench:end -->` changes; everything else, the markers included, stays byte for byte.
import { readFileSync, writeFileSync } from 'node:fs';

export const README_START = '<!-- bench:start -->';
export const README_END = '<!-- bench:end -->';

/** The README lacks its markers, has several, or has them in the wrong order. */
export class ReadmeMarkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReadmeMarkerError';
  }
}

function onlyIndex(text: string, marker: string, file: string): number {
  const at = text.indexOf(marker);
  if (at < 0) throw new ReadmeMarkerError(`${file} has no '${marker}' line: cannot place the benchmark section`);
  if (text.indexOf(marker, at + marker.length) >= 0) throw new ReadmeMarkerError(`${file} has '${marker}' more than once`);
  return at;
}

/** `readme` with the text between the markers replaced by `section` (on lines of its own). */
export function rewriteReadmeSection(readme: string, section: string, file = 'README.md'): string {
  const start = onlyIndex(readme, README_START, file);
  const end = onlyIndex(readme, README_END, file);
  if (end < start) throw new ReadmeMarkerError(`${file}: '${README_END}' comes before '${README_START}'`);
  if (section.includes(README_START) || section.includes(README_END)) {
    throw new ReadmeMarkerError('the benchmark section must not contain the README markers');
  }
  const head = readme.slice(0, start + README_START.length);
  return `${head}\n${section.trim()}\n${readme.slice(end)}`;
}

/** Rewrites the section of the README at `path` in place; returns whether the file changed. */
export function updateReadme(path: string, section: string): boolean {
  const before = readFileSync(path, 'utf8');
  const after = rewriteReadmeSection(before, section, path);
  if (after === before) return false;
  writeFileSync(path, after);
  return true;
}
