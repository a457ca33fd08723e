// Unit tests of the CSV download (`npm test`, node's own runner; check-bundle.sh runs them).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { toCsv } from './csv.js';

const lines = (csv) => csv.split('\r\n').slice(0, -1);

test('cells are RFC 4180: quoted where needed, quotes doubled, CRLF line ends', () => {
  const csv = toCsv(['segment', 'customers'], [{ segment: 'Champions, "loyal"', customers: 42 }, { segment: null }]);
  assert.equal(csv, 'segment,customers\r\n"Champions, ""loyal""",42\r\n,\r\n');
});

test('a cell a spreadsheet would run as a formula is neutralised: a quote in front, quoted', () => {
  const rows = [
    { v: '=HYPERLINK("http://attacker.example","x")' },
    { v: '+1+cmd|" /C calc"!A0' },
    { v: '-2+3' },
    { v: '@SUM(A1:A9)' },
    { v: '\t=1' },
    { v: '\r=1' },
    { v: '-' },
    { v: ['=1', 'safe'] },
  ];
  assert.deepEqual(lines(toCsv(['v'], rows)).slice(1), [
    `"'=HYPERLINK(""http://attacker.example"",""x"")"`,
    `"'+1+cmd|"" /C calc""!A0"`,
    `"'-2+3"`,
    `"'@SUM(A1:A9)"`,
    `"'\t=1"`,
    `"'\r=1"`,
    `"'-"`,
    `"'=1; safe"`,
  ]);
});

test('numbers stay numbers, negative ones too, whether sent as numbers or as text', () => {
  const rows = [{ v: -3.5 }, { v: '-3.5' }, { v: -1e-7 }, { v: '-12' }, { v: 0 }, { v: 'a=b' }, { v: 'x-1' }];
  assert.deepEqual(lines(toCsv(['v'], rows)).slice(1), ['-3.5', '-3.5', '-1e-7', '-12', '0', 'a=b', 'x-1']);
});

test('a column name is neutralised like a cell', () => {
  assert.equal(lines(toCsv(['=cmd'], []))[0], `"'=cmd"`);
});
