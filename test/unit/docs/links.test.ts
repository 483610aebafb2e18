import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT as ROOT, linkProblems } from './markdown-links';

/*
 * The repository carries its own documentation: README.md, docs/**\/*.md and data/README.md may link
 * only to files inside the repository, every relative link must lead to a file that exists, and
 * every #anchor to a heading that exists. Nor may the text name a path on the machine it was written
 * on (a home or work directory) or a document that only exists outside the repository.
 */

function markdownFiles(): string[] {
  const files = ['README.md', join('data', 'README.md')];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(ROOT, dir)).sort()) {
      const path = join(dir, name);
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else if (name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  return files;
}

const readRepo = (path: string): string | null => {
  const full = join(ROOT, path);
  if (!existsSync(full)) return null;
  return statSync(full).isDirectory() ? '' : readFileSync(full, 'utf8');
};

describe('documentation links', () => {
  const files = markdownFiles();

  it('covers the README, data/README.md and every page under docs/', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'README.md',
        join('data', 'README.md'),
        join('docs', 'configuration.md'),
      ]),
    );
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)(
    '%s links only inside the repository, to files and headings that exist',
    (file) => {
      expect(linkProblems(file, readFileSync(join(ROOT, file), 'utf8'), readRepo)).toEqual([]);
    },
  );

  it('catches absolute paths, escapes from the repository, missing files and missing headings', () => {
    const text = [
      '# Title',
      '## Read `this` (first)',
      'See [abs](/etc/passwd), [out](../../outside.md), [gone](docs/nope.md), [ok](README.md),',
      '[self](#read-this-first), [bad anchor](#nowhere), [web](https://example.org/x) and',
      '[data](data/README.md#no-such-heading).',
      '```',
      '[not a link](/in/a/code/block)',
      '```',
      'Written in /work/wt/x, see ../shared/DESIGN.md.',
    ].join('\n');
    const problems = linkProblems('README.md', text, readRepo);
    expect(problems).toEqual([
      'README.md: /etc/passwd is not a path inside the repository',
      'README.md: ../../outside.md leads out of the repository',
      'README.md: docs/nope.md: docs/nope.md does not exist',
      'README.md: #nowhere: no heading #nowhere in README.md',
      `README.md: data/README.md#no-such-heading: no heading #no-such-heading in ${join('data', 'README.md')}`,
      'README.md:9: names a path of the machine it was written on (/work/)',
      'README.md:9: names a folder outside the repository (../shared)',
      'README.md:9: names DESIGN.md, which is not part of the repository',
    ]);
  });
});
