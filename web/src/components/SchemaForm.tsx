// A form drawn from a provider's JSON schema (pydantic's), so no provider needs its own page.
import { useI18n, type MessageKey } from "../i18n";

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  format?: string;
  writeOnly?: boolean;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
}

export type FormValues = Record<string, unknown>;

type Kind = "text" | "password" | "number" | "integer" | "boolean" | "list" | "choice";

export interface Field {
  name: string;
  kind: Kind;
  label: string;
  help?: string;
  required: boolean;
  nullable: boolean;
  choices?: string[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
}

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  if (schema.$ref?.startsWith("#/$defs/")) {
    const target = root.$defs?.[schema.$ref.slice("#/$defs/".length)];
    if (target) return { ...target, ...schema, $ref: undefined };
  }
  return schema;
}

/** Flatten the schema's properties into fields the form knows how to draw. */
export function fieldsOf(root: JsonSchema): Field[] {
  const required = new Set(root.required ?? []);
  return Object.entries(root.properties ?? {}).map(([name, raw]) => {
    let prop = resolve(raw, root);
    let nullable = false;
    if (prop.anyOf) {
      const options = prop.anyOf.map((o) => resolve(o, root));
      nullable = options.some((o) => o.type === "null");
      const real = options.find((o) => o.type !== "null") ?? {};
      prop = { ...real, ...prop, anyOf: undefined, type: real.type };
    }
    let kind: Kind = "text";
    if (prop.enum) kind = "choice";
    else if (prop.type === "boolean") kind = "boolean";
    else if (prop.type === "integer") kind = "integer";
    else if (prop.type === "number") kind = "number";
    else if (prop.type === "array") kind = "list";
    else if (prop.format === "password" || prop.writeOnly) kind = "password";
    return {
      name,
      kind,
      label: prop.title ?? name,
      help: prop.description,
      required: required.has(name),
      nullable,
      choices: prop.enum?.map(String),
      minimum: prop.minimum,
      maximum: prop.maximum,
      default: prop.default,
    };
  });
}

/** The values a fresh form starts with: the schema's defaults. */
export function initialValues(schema: JsonSchema, existing: FormValues = {}): FormValues {
  const values: FormValues = {};
  for (const field of fieldsOf(schema)) {
    const value = existing[field.name] ?? field.default;
    if (field.kind === "list") values[field.name] = Array.isArray(value) ? value.join("\n") : "";
    else if (field.kind === "boolean") values[field.name] = Boolean(value);
    else values[field.name] = value === null || value === undefined ? "" : String(value);
  }
  return values;
}

/** What to send: numbers as numbers, lists split by line, blank optional fields left out. */
export function toPayload(schema: JsonSchema, values: FormValues): FormValues {
  const out: FormValues = {};
  for (const field of fieldsOf(schema)) {
    const value = values[field.name];
    if (field.kind === "boolean") {
      out[field.name] = Boolean(value);
      continue;
    }
    if (field.kind === "list") {
      out[field.name] = String(value ?? "")
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter(Boolean);
      continue;
    }
    const text = String(value ?? "").trim();
    if (text === "") {
      if (field.required) out[field.name] = "";
      else if (field.nullable) out[field.name] = null;
      continue; // the server's default applies
    }
    out[field.name] = field.kind === "number" || field.kind === "integer" ? Number(text) : text;
  }
  return out;
}

interface SchemaFormProps {
  schema: JsonSchema;
  values: FormValues;
  onChange: (values: FormValues) => void;
  idPrefix: string;
  /** The provider's name: its own field words win over shared ones. */
  scope?: string;
  disabled?: boolean;
}

/** The fields only; the caller owns the <form> and its buttons. */
export function SchemaFields({ schema, values, onChange, idPrefix, scope = "", disabled }: SchemaFormProps) {
  const { t, has } = useI18n();
  const set = (name: string, value: unknown) => onChange({ ...values, [name]: value });
  return (
    <>
      {fieldsOf(schema).map((field) => {
        const id = `${idPrefix}-${field.name}`;
        // Words for a field: the provider's own first (field.s3.bucket), then any provider's.
        const words = (suffix: string, fallback?: string) => {
          for (const key of [`field.${scope}.${field.name}${suffix}`, `field.${field.name}${suffix}`]) {
            if (has(key)) return t(key);
          }
          return fallback;
        };
        const label = words("", field.label) ?? field.name;
        const help = words(".help", field.help);
        const common = {
          id,
          name: field.name,
          disabled,
          required: field.required,
          "aria-describedby": help ? `${id}-help` : undefined,
        };
        let input;
        switch (field.kind) {
          case "boolean":
            input = (
              <input
                {...common}
                required={false}
                type="checkbox"
                checked={Boolean(values[field.name])}
                onChange={(e) => set(field.name, e.target.checked)}
              />
            );
            break;
          case "list":
            input = (
              <textarea
                {...common}
                rows={3}
                placeholder={t("form.onePerLine")}
                value={String(values[field.name] ?? "")}
                onChange={(e) => set(field.name, e.target.value)}
              />
            );
            break;
          case "choice":
            input = (
              <select
                {...common}
                value={String(values[field.name] ?? "")}
                onChange={(e) => set(field.name, e.target.value)}
              >
                {!field.required && <option value="">–</option>}
                {field.choices?.map((c) => (
                  <option key={c} value={c}>
                    {has(`choice.${field.name}.${c}`) ? t(`choice.${field.name}.${c}` as MessageKey) : c}
                  </option>
                ))}
              </select>
            );
            break;
          default:
            input = (
              <input
                {...common}
                type={
                  field.kind === "password"
                    ? "password"
                    : field.kind === "number" || field.kind === "integer"
                      ? "number"
                      : "text"
                }
                autoComplete={field.kind === "password" ? "new-password" : "off"}
                min={field.minimum}
                max={field.maximum}
                step={field.kind === "integer" ? 1 : field.kind === "number" ? "any" : undefined}
                value={String(values[field.name] ?? "")}
                onChange={(e) => set(field.name, e.target.value)}
              />
            );
        }
        return (
          <div className={field.kind === "boolean" ? "field field-check" : "field"} key={field.name}>
            <label htmlFor={id}>
              {label}
              {field.required && (
                <span className="required" aria-hidden="true">
                  {" "}
                  *
                </span>
              )}
            </label>
            {input}
            {help && (
              <small id={`${id}-help`} className="help">
                {help}
              </small>
            )}
          </div>
        );
      })}
    </>
  );
}
