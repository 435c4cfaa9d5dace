// FilterCriteria as Lambda applies them to Kafka records: EventBridge pattern syntax on the
// UTF-8 decoded value; JSON values are matched field by field, other values as one plain string.
import type { SourceRecord } from './event';

type Pattern = Record<string, unknown>;

export type RecordFilter = (record: SourceRecord) => boolean;

/** A record passes when any pattern matches; no patterns means every record passes. */
export function compileFilter(patterns: unknown[]): RecordFilter {
  const parsed = patterns.map(parsePattern);
  if (parsed.length === 0) return () => true;
  return (record) => {
    const data = filterableData(record);
    return parsed.some((pattern) => matchesObject(pattern, data));
  };
}

function parsePattern(pattern: unknown): Pattern {
  // CloudFormation carries patterns as {Pattern: "<json>"}; serverless.yml as plain objects.
  const raw = (pattern as { Pattern?: unknown } | null)?.Pattern ?? pattern;
  const value = typeof raw === 'string' ? JSON.parse(raw) : raw;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`Filter pattern must be an object, got ${JSON.stringify(pattern)}`);
  }
  const others = Object.keys(value).filter((key) => key !== 'value');
  if (others.length > 0) {
    throw new Error(
      `Filter pattern ${JSON.stringify(value)} uses ${others.join(', ')}: Kafka event source mappings filter on value only`,
    );
  }
  return value as Pattern;
}

/** Kafka ESMs filter on the value only (AWS: "only support filtering on the value key"). */
function filterableData(record: SourceRecord): Record<string, unknown> {
  return record.value === null ? {} : { value: decodeValue(record.value) };
}

function decodeValue(value: Buffer): unknown {
  const text = value.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    // Only JSON objects are matched field by field; anything else is a plain string.
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
  } catch {
    // Not JSON: matched as a plain string.
  }
  return text;
}

function matchesObject(pattern: Pattern, data: unknown): boolean {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return false;
  const fields = data as Record<string, unknown>;
  return Object.entries(pattern).every(([field, rule]) => {
    const present = Object.hasOwn(fields, field);
    if (Array.isArray(rule)) return matchesAnyRule(rule, present, fields[field]);
    if (rule !== null && typeof rule === 'object')
      return present && matchesObject(rule as Pattern, fields[field]);
    throw new Error(`Filter pattern field "${field}" must be an array or an object`);
  });
}

function matchesAnyRule(rules: unknown[], present: boolean, value: unknown): boolean {
  const values = Array.isArray(value) ? value : [value];
  return rules.some((rule) => {
    if (isObject(rule) && 'exists' in rule) return rule.exists === present;
    if (!present) return false;
    return values.some((candidate) => matchesRule(rule, candidate));
  });
}

function matchesRule(rule: unknown, value: unknown): boolean {
  if (!isObject(rule)) return rule === value;
  if ('prefix' in rule) return typeof value === 'string' && value.startsWith(String(rule.prefix));
  if ('suffix' in rule) return typeof value === 'string' && value.endsWith(String(rule.suffix));
  if ('equals-ignore-case' in rule) {
    return (
      typeof value === 'string' && value.toLowerCase() === String(rule['equals-ignore-case']).toLowerCase()
    );
  }
  if ('anything-but' in rule) return !matchesAnythingBut(rule['anything-but'], value);
  if ('numeric' in rule) return matchesNumeric(rule.numeric, value);
  throw new Error(`Unsupported filter rule ${JSON.stringify(rule)}`);
}

function matchesAnythingBut(excluded: unknown, value: unknown): boolean {
  if (Array.isArray(excluded)) return excluded.some((item) => item === value);
  if (isObject(excluded)) return matchesRule(excluded, value);
  return excluded === value;
}

function matchesNumeric(conditions: unknown, value: unknown): boolean {
  if (typeof value !== 'number' || !Array.isArray(conditions)) return false;
  for (let i = 0; i + 1 < conditions.length; i += 2) {
    const limit = Number(conditions[i + 1]);
    const holds = {
      '=': value === limit,
      '<': value < limit,
      '<=': value <= limit,
      '>': value > limit,
      '>=': value >= limit,
    }[String(conditions[i])];
    if (holds !== true) return false;
  }
  return true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
