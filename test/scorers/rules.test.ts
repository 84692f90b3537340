/**
 * The rules language (src/scorers/rules.ts) and the whole verdict (identity, then rules): parsing,
 * null handling, resolution order (default → prompt set → config category), every problem a user can
 * write, and the property that a recorded pair judged again by the same rules gets the same verdict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRules, firstFailingRule, holds, parseCondition, resolveRules, runRules, type RuleContext } from '../../src/scorers/rules.ts';
import { judge, judgeRecorded, BELOW_THRESHOLD } from '../../src/candidates/verdict.ts';
import { DEFAULT_IDENTITY } from '../../src/identity/config.ts';
import { mulberry32 } from '../helpers/prng.ts';

const ALL: RuleContext = { enabled: ['pose', 'expression', 'age', 'edit', 'background', 'quality', 'safety', 'duplicates'], identity: true };

test('conditions: comparisons and closed ranges; spaces, signs and exponents', () => {
  assert.deepEqual(parseCondition('edit.magnitude >= 0.04'), { score: 'edit.magnitude', op: '>=', value: 0.04 });
  assert.deepEqual(parseCondition('  pose.yaw_delta<=12 '), { score: 'pose.yaw_delta', op: '<=', value: 12 });
  assert.deepEqual(parseCondition('age.delta in [-5, 1e1]'), { score: 'age.delta', op: 'in', value: -5, high: 10 });
  assert.deepEqual(parseCondition('expression.happy_gain > .3'), { score: 'expression.happy_gain', op: '>', value: 0.3 });
  const range = parseCondition('edit.magnitude in [0.04, 0.6]');
  assert.equal(holds(range, 0.04), true, 'both ends are in');
  assert.equal(holds(range, 0.6), true);
  assert.equal(holds(range, 0.61), false);
  assert.equal(holds(parseCondition('a.b != 1'), 2), true);
  assert.equal(holds(parseCondition('a.b == 1'), 1), true);
  for (const bad of ['edit.magnitude => 1', 'edit.magnitude >= ', 'magnitude >= 1', 'edit.magnitude in [1]', 'edit.magnitude >= 1 or 2', 'Edit.Magnitude > 1']) {
    assert.throws(() => parseCondition(bad), /is not a condition; expected/, bad);
  }
  assert.throws(() => parseCondition('edit.magnitude in [0.6, 0.04]'), /range \[0\.6, 0\.04\] is empty/);
});

test('an unmeasured score (null, NaN) fails every condition on it', () => {
  for (const text of ['pose.yaw_delta <= 12', 'pose.yaw_delta > -1000', 'pose.yaw_delta != 3', 'pose.yaw_delta in [-1e9, 1e9]']) {
    assert.equal(holds(parseCondition(text), null), false, text);
    assert.equal(holds(parseCondition(text), Number.NaN), false, text);
  }
});

test('resolution: default table, then the prompt set\'s category rules, then the config\'s; same name replaces in place, null removes', () => {
  const problems: string[] = [];
  const rules = resolveRules({
    rules: {
      default: { not_edited: 'edit.magnitude >= 0.02', kept_pose: 'pose.yaw_delta <= 12', unsafe: ['safety.edited_porn < 0.7', 'safety.edited_hentai < 0.7'] },
      categories: { expression: { no_smile: 'expression.happy_gain >= 0.3', kept_pose: 'pose.yaw_delta <= 20' }, style: { not_edited: null } },
    },
    promptRules: { expression: { kept_pose: 'pose.yaw_delta <= 15', subtle: 'edit.magnitude <= 0.5' }, style: { not_edited: 'edit.magnitude >= 0.1' } },
    categories: ['expression', 'style', 'hair'],
    context: ALL,
  }, problems);
  assert.deepEqual(problems, []);
  const names = (c: string) => rules.get(c)!.map((r) => `${r.name}: ${r.text}`);
  assert.deepEqual(names('hair'), ['not_edited: edit.magnitude >= 0.02', 'kept_pose: pose.yaw_delta <= 12', 'unsafe: safety.edited_porn < 0.7 and safety.edited_hentai < 0.7']);
  assert.deepEqual(names('expression'), [
    'not_edited: edit.magnitude >= 0.02',
    'kept_pose: pose.yaw_delta <= 20', // the config beats the prompt set, which beat the default, in the default's place
    'unsafe: safety.edited_porn < 0.7 and safety.edited_hentai < 0.7',
    'subtle: edit.magnitude <= 0.5',
    'no_smile: expression.happy_gain >= 0.3',
  ]);
  assert.deepEqual(names('style'), ['kept_pose: pose.yaw_delta <= 12', 'unsafe: safety.edited_porn < 0.7 and safety.edited_hentai < 0.7'], 'the config removed what the prompt set set');
});

test('built-in defaults follow the enabled scorers: not_edited with edit, unsafe with safety, nothing else', () => {
  assert.deepEqual(Object.keys(defaultRules(ALL.enabled)), ['not_edited', 'unsafe']);
  assert.deepEqual(Object.keys(defaultRules(['pose', 'quality'])), []);
  const problems: string[] = [];
  const none = runRules({ config: { identity: { enabled: true } }, promptRules: {}, categories: ['a'] }, problems);
  assert.deepEqual(none.get('a'), [], 'a config without scorers has no rules');
  const explicitEmpty = runRules({ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: {} } }, promptRules: {}, categories: ['a'] }, problems);
  assert.deepEqual(explicitEmpty.get('a'), [], 'rules.default: {} turns the built-in defaults off');
  assert.deepEqual(problems, []);
});

test('every problem names its key and says what was expected', () => {
  const cases: [Parameters<typeof runRules>[0], RegExp][] = [
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: { x: 'edit.magnitud > 0' } } }, promptRules: {}, categories: ['a'] },
      /^rules\.default\.x: unknown score edit\.magnitud; the edit scorer gives edit\.magnitude, edit\.changed_fraction, edit\.face_magnitude$/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: { x: 'colour.hue > 0' } } }, promptRules: {}, categories: ['a'] },
      /^rules\.default\.x: unknown scorer "colour" in colour\.hue; known: identity, pose, expression/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: { x: 'pose.yaw_delta < 3' } } }, promptRules: {}, categories: ['a'] },
      /^rules\.default\.x: pose\.yaw_delta needs the pose scorer, which is not in scorers\.enabled \(edit\)$/],
    [{ config: { identity: { enabled: false }, rules: { default: { x: 'identity.similarity <= 0.99' } } }, promptRules: {}, categories: ['a'] },
      /^rules\.default\.x: identity\.similarity needs the identity stage, and identity\.enabled is false$/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['duplicates'] }, rules: { default: { x: 'duplicates.source_dhash > 0' } } }, promptRules: {}, categories: ['a'] },
      /is a text, not a number a rule can compare/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: { x: 'edit.magnitude >> 0' } } }, promptRules: {}, categories: ['a'] },
      /^rules\.default\.x: "edit\.magnitude >> 0" is not a condition/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { categories: { b: { x: 'edit.magnitude > 0' } } } }, promptRules: {}, categories: ['a'] },
      /^rules\.categories\.b: the prompt set has no category "b" \(it has a\)$/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] } }, promptRules: { a: { x: 'pose.roll_delta < 3' } }, categories: ['a'] },
      /^prompt set: categories\.a\.rules\.x: pose\.roll_delta needs the pose scorer/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: { identity_below_threshold: 'edit.magnitude > 0' } } }, promptRules: {}, categories: ['a'] },
      /is a reject reason of the identity stage/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: { 'Not Edited': 'edit.magnitude > 0' } } }, promptRules: {}, categories: ['a'] },
      /^rules\.default\.Not Edited: a rule name is lower-case letters, digits and _/],
    [{ config: { identity: { enabled: true }, scorers: { enabled: ['edit'] }, rules: { default: { x: [] } } }, promptRules: {}, categories: ['a'] },
      /^rules\.default\.x: expected a condition/],
  ];
  for (const [input, expected] of cases) {
    const problems: string[] = [];
    runRules(input, problems);
    assert.ok(problems.length > 0, `${JSON.stringify(input.config.rules ?? input.promptRules)}: no problem found`);
    assert.match(problems[0], expected);
  }
});

test('verdict: identity first (face problem, threshold), then the rules in order; the first failing rule names the reason', () => {
  const problems: string[] = [];
  const rules = runRules({ config: { identity: { enabled: true }, scorers: { enabled: ['edit', 'pose'] }, rules: { default: { not_edited: 'edit.magnitude >= 0.02', kept_pose: 'pose.yaw_delta <= 12' } } }, promptRules: {}, categories: ['a'] }, problems).get('a')!;
  const scores = (m: number | null, y: number | null) => (name: string) => ({ 'edit.magnitude': m, 'pose.yaw_delta': y })[name] ?? null;
  assert.deepEqual(judge({ similarity: null, faceProblem: 'no_face_edited' }, 0.5, rules, scores(0, 99)), { accepted: false, rejectReason: 'no_face_edited', threshold: 0.5 });
  assert.equal(judge({ similarity: 0.4, faceProblem: null }, 0.5, rules, scores(0, 99)).rejectReason, BELOW_THRESHOLD);
  assert.equal(judge({ similarity: 0.9, faceProblem: null }, 0.5, rules, scores(0, 99)).rejectReason, 'not_edited');
  assert.equal(judge({ similarity: 0.9, faceProblem: null }, 0.5, rules, scores(0.1, 99)).rejectReason, 'kept_pose');
  assert.equal(judge({ similarity: 0.9, faceProblem: null }, 0.5, rules, scores(0.1, null)).rejectReason, 'kept_pose', 'an unmeasured pose fails the rule');
  assert.deepEqual(judge({ similarity: 0.9, faceProblem: null }, 0.5, rules, scores(0.1, 3)), { accepted: true, rejectReason: null, threshold: 0.5 });
  assert.equal(judge(null, 0.5, rules, scores(0.1, 3)).accepted, true, 'identity disabled: the rules alone');
});

test('a recorded pair judged again by the same threshold and rules keeps its verdict; changed rules change only what they read', () => {
  const random = mulberry32(5);
  const problems: string[] = [];
  const rules = runRules({ config: { identity: { enabled: true }, scorers: { enabled: ['edit', 'pose'] }, rules: { default: { not_edited: 'edit.magnitude >= 0.05', kept_pose: 'pose.yaw_delta in [0, 12]' } } }, promptRules: {}, categories: ['a'] }, problems).get('a')!;
  const laxer = runRules({ config: { identity: { enabled: true }, scorers: { enabled: ['edit', 'pose'] }, rules: { default: { not_edited: 'edit.magnitude >= 0.01', kept_pose: 'pose.yaw_delta in [0, 12]' } } }, promptRules: {}, categories: ['a'] }, problems).get('a')!;
  const identity = { ...DEFAULT_IDENTITY, threshold: 0.5 };
  for (let i = 0; i < 3000; i++) {
    const faceProblem = random() < 0.1 ? 'no_face_source' : null;
    const similarity = faceProblem ? null : Math.round((random() * 2 - 1) * 100) / 100;
    const magnitude = random() < 0.05 ? null : Math.round(random() * 20) / 100;
    const yaw = random() < 0.1 ? null : Math.round(random() * 30);
    const fresh = judge({ similarity, faceProblem }, 0.5, rules, (n) => (n === 'edit.magnitude' ? magnitude : yaw));
    const row = { category: 'a', identity_similarity: similarity, reject_reason: fresh.rejectReason, edit_magnitude: magnitude, pose_yaw_delta: yaw };
    assert.deepEqual(judgeRecorded(row, identity, rules, null), fresh, JSON.stringify(row));
    if (fresh.accepted) assert.equal(judgeRecorded(row, identity, laxer, null).accepted, true, 'a laxer rule never drops a pair');
  }
  assert.deepEqual(problems, []);
});

test('a first failing rule is found in order over lists of conditions', () => {
  const problems: string[] = [];
  const rules = runRules({ config: { identity: { enabled: false }, scorers: { enabled: ['safety'] } }, promptRules: {}, categories: ['a'] }, problems).get('a')!;
  const safe = (name: string) => (name.endsWith('_porn') || name.endsWith('_hentai') ? 0.1 : 0.9);
  assert.equal(firstFailingRule(rules, safe), null);
  assert.equal(firstFailingRule(rules, (n) => (n === 'safety.edited_hentai' ? 0.95 : safe(n))), 'unsafe');
});
