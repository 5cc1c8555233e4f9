// The API's field messages in the console form's words.
import { describe, expect, it } from "vitest";
import { inFormWords } from "../../../console/src/api.ts";

const labels = { name: "Audience name", startsAt: "Starts", endsAt: "Ends", webhookUrl: "Webhook URL" };

describe("inFormWords", () => {
  it("leaves what is quoted as the user typed it", () => {
    expect(inFormWords('an audience named "summer_sale" is saved already', labels)).toBe(
      'an audience named "summer_sale" is saved already',
    );
  });

  it("writes the API's snake_case values as the form's menus do", () => {
    expect(inFormWords("targetId * is only allowed when action is allow_discounts or hide_discounts", labels)).toBe(
      "targetId * is only allowed when action is allow discounts or hide discounts",
    );
  });

  it("names the fields by their labels: the first word, and names in camelCase anywhere", () => {
    expect(inFormWords("endsAt must be after startsAt", labels)).toBe("Ends must be after Starts");
    expect(inFormWords("name must not be empty", labels)).toBe("Audience name must not be empty");
    expect(inFormWords("webhookUrl must use https", labels)).toBe("Webhook URL must use https");
  });

  it("leaves plain words and names it has no label for as they are", () => {
    expect(inFormWords('an audience named "x" is saved already: choose another name', labels)).toBe(
      'an audience named "x" is saved already: choose another name',
    );
    expect(inFormWords("slot is required when action is pin", labels)).toBe("slot is required when action is pin");
    expect(inFormWords("constructor must be text", labels)).toBe("constructor must be text");
  });
});
