import { dirname, join, relative, resolve, sep } from 'node:path';

/** Markdown link checks for the documentation test (links.test.ts). */

export const REPO_ROOT = resolve(__dirname, '..', '..', '..');
const ROOT = REPO_ROOT;

/** The text without fenced code blocks and inline code spans, where brackets are not links. */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, each space a hyphen, repeats numbered. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  for (const line of prose(text.replace(/`([^`\n]*)`/g, '$1')).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    const base = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = counts.get(base) ?? 0;
    counts.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** Link targets of a Markdown text: inline links and images, and reference definitions. */
export function linkTargets(text: string): string[] {
  const body = prose(text);
  const targets: string[] = [];
  for (const m of body.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]!);
  for (const m of body.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) targets.push(m[1]!);
  return targets;
}

/** What is wrong with the links and paths of one file (`file` relative to the repository). */
export function linkProblems(
  file: string,
  text: string,
  read: (path: string) => string | null,
): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(text)) {
    if (/^(https?:|mailto:)/.test(target)) continue;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('/')) {
      problems.push(`${file}: ${target} is not a path inside the repository`);
      continue;
    }
    const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
    const path = pathPart === '' ? file : join(dirname(file), decodeURIComponent(pathPart));
    const fromRoot = relative(ROOT, resolve(ROOT, path));
    if (fromRoot.startsWith(`..${sep}`) || fromRoot === '..') {
      problems.push(`${file}: ${target} leads out of the repository`);
      continue;
    }
    const content = pathPart === '' ? text : read(fromRoot);
    if (content === null) {
      problems.push(`${file}: ${target}: ${fromRoot} does not exist`);
      continue;
    }
    if (
      anchor !== undefined &&
      anchor !== '' &&
      fromRoot.endsWith('.md') &&
      !anchorsOf(content).has(anchor)
    )
      problems.push(`${file}: ${target}: no heading #${anchor} in ${fromRoot}`);
  }
  const foreign: [RegExp, string][] = [
    [/\/work\//, 'a path of the machine it was written on (/work/)'],
    [/\/home\/|\/Users\/|[A-Z]:\\\\/, 'a home directory'],
    [/\.\.\/shared\b/, 'a folder outside the repository (../shared)'],
    [/file:\/\//, 'a file: URL'],
    [/\bDESIGN\.md\b/, 'DESIGN.md, which is not part of the repository'],
  ];
  text.split('\n').forEach((line, i) => {
    for (const [pattern, what] of foreign)
      if (pattern.test(line)) problems.push(`${file}:${i + 1}: names ${what}`);
  });
  return problems;
}
