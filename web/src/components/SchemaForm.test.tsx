import { fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { I18nProvider, type Lang } from "../i18n";
import {
  SchemaFields,
  fieldsOf,
  initialValues,
  toPayload,
  type FormValues,
  type JsonSchema,
} from "./SchemaForm";

// What GET /api/providers sends for S3 (pydantic's model_json_schema of S3Config).
const S3: JsonSchema = {
  properties: {
    bucket: { description: "The bucket the videos are in.", minLength: 1, title: "Bucket", type: "string" },
    prefixes: { items: { type: "string" }, title: "Prefixes", type: "array" },
    region: { default: "us-east-1", title: "Region", type: "string" },
    endpoint_url: { anyOf: [{ type: "string" }, { type: "null" }], default: null, title: "Endpoint Url" },
    path_style: { default: false, title: "Path Style", type: "boolean" },
    access_key_id: { minLength: 1, title: "Access Key Id", type: "string" },
    secret_access_key: { format: "password", title: "Secret Access Key", type: "string", writeOnly: true },
  },
  required: ["bucket", "access_key_id", "secret_access_key"],
  title: "S3Config",
  type: "object",
};

const DEVICE: JsonSchema = {
  $defs: { Protocol: { enum: ["http", "https"], title: "Protocol", type: "string" } },
  properties: {
    host: { title: "Host", type: "string" },
    port: { default: 80, maximum: 65535, minimum: 1, title: "Port", type: "integer" },
    protocol: { $ref: "#/$defs/Protocol", default: "http" },
    settle: { title: "Settle", type: "number", default: 1.5 },
  },
  required: ["host"],
  type: "object",
};

function Form({ schema, lang = "en", scope }: { schema: JsonSchema; lang?: Lang; scope?: string }) {
  const [values, setValues] = useState<FormValues>(() => initialValues(schema));
  return (
    <I18nProvider initial={lang}>
      <SchemaFields schema={schema} values={values} onChange={setValues} idPrefix="f" scope={scope} />
      <output data-testid="payload">{JSON.stringify(toPayload(schema, values))}</output>
    </I18nProvider>
  );
}

const payload = () => JSON.parse(screen.getByTestId("payload").textContent!) as FormValues;

describe("SchemaForm", () => {
  it("draws every field with the right control, secrets hidden", () => {
    render(<Form schema={S3} />);
    expect(screen.getByLabelText(/^Secret access key/).getAttribute("type")).toBe("password");
    expect(screen.getByLabelText(/^Path-style addressing/).getAttribute("type")).toBe("checkbox");
    expect(screen.getByLabelText(/^Prefixes/).tagName).toBe("TEXTAREA");
    expect((screen.getByLabelText(/^Region/) as HTMLInputElement).value).toBe("us-east-1");
    expect((screen.getByLabelText(/^Bucket/) as HTMLInputElement).required).toBe(true);
    expect((screen.getByLabelText(/^Region/) as HTMLInputElement).required).toBe(false);
  });

  it("sends typed values: lists split by line, blank optional fields left to the server", () => {
    render(<Form schema={S3} />);
    fireEvent.change(screen.getByLabelText(/^Bucket/), { target: { value: " cams " } });
    fireEvent.change(screen.getByLabelText(/^Prefixes/), { target: { value: "shop-1/\n\n shop-2/ " } });
    fireEvent.change(screen.getByLabelText(/^Access key ID/), { target: { value: "AKIA" } });
    fireEvent.change(screen.getByLabelText(/^Secret access key/), { target: { value: "s3cr3t" } });
    fireEvent.click(screen.getByLabelText(/^Path-style addressing/));
    expect(payload()).toEqual({
      bucket: "cams",
      prefixes: ["shop-1/", "shop-2/"],
      region: "us-east-1",
      endpoint_url: null,
      path_style: true,
      access_key_id: "AKIA",
      secret_access_key: "s3cr3t",
    });
  });

  it("reads enums behind $ref, numbers and integers", () => {
    render(<Form schema={DEVICE} />);
    const kinds = Object.fromEntries(fieldsOf(DEVICE).map((f) => [f.name, f.kind]));
    expect(kinds).toEqual({ host: "text", port: "integer", protocol: "choice", settle: "number" });
    const protocol = screen.getByLabelText(/^Protocol/) as HTMLSelectElement;
    expect([...protocol.options].map((o) => o.value)).toEqual(["", "http", "https"]);
    fireEvent.change(screen.getByLabelText(/^Port/), { target: { value: "8000" } });
    fireEvent.change(protocol, { target: { value: "https" } });
    fireEvent.change(screen.getByLabelText(/^Address \(IP or host name\)/), {
      target: { value: "192.168.1.64" },
    });
    expect(payload()).toEqual({ host: "192.168.1.64", port: 8000, protocol: "https", settle: 1.5 });
  });

  it("labels known fields in Vietnamese, others by the schema's title", () => {
    render(
      <Form
        schema={{ ...S3, properties: { ...S3.properties, extra: { title: "Extra Thing", type: "string" } } }}
        lang="vi"
      />,
    );
    expect(screen.getByLabelText(/^Vùng \(region\)/)).toBeTruthy();
    expect(screen.getByText("Bucket chứa video.")).toBeTruthy();
    expect(screen.getByLabelText(/^Extra Thing/)).toBeTruthy();
  });

  it("prefers the provider's own words for a field, and translates choices", () => {
    const settle: JsonSchema = {
      properties: {
        settle_seconds: { default: 60, title: "Settle Seconds", type: "number" },
        cameras_from: { default: "subfolders", enum: ["subfolders", "selection"], type: "string" },
      },
      type: "object",
    };
    const { unmount } = render(<Form schema={settle} lang="vi" scope="local" />);
    expect(screen.getByText(/không lấy video đang ghi dở/)).toBeTruthy();
    const choice = screen.getByLabelText(/^Xác định camera theo/) as HTMLSelectElement;
    expect([...choice.options].map((o) => o.textContent)).toEqual([
      "–",
      "Mỗi thư mục con",
      "Thư mục đã chọn",
    ]);
    unmount();
    render(<Form schema={settle} lang="vi" scope="hikvision" />);
    expect(screen.getByText(/gần giờ hiện tại của thiết bị/)).toBeTruthy();
  });
});
