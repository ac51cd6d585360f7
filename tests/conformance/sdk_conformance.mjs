// Drives a running cortex with the official OpenAI and Anthropic npm SDKs and prints one JSON
// object describing what the SDKs saw. The C++ test (sdk_conformance_test.cpp) starts cortex in
// front of a scripted mock neuron, runs this script and asserts on the JSON.
//
// Usage: node sdk_conformance.mjs <cortex base url, e.g. http://127.0.0.1:31313> <model>
// Exit status: 0 when every call returned what an SDK accepts; non-zero on any SDK exception
// (the message goes to stderr). The deliberate bad-model calls are expected to throw and are
// recorded, not fatal.
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const [base, model] = process.argv.slice(2);
if (!base || !model) {
    console.error('usage: node sdk_conformance.mjs <base_url> <model>');
    process.exit(2);
}

// Placeholder keys: cortex serves unknown keys anonymously unless auth is required.
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-placeholder', maxRetries: 0,
                            timeout: 20000 });
const anthropic = new Anthropic({ baseURL: base, apiKey: 'sk-ant-placeholder', maxRetries: 0,
                                  timeout: 20000 });

const weatherToolOpenAI = {
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'Current weather for a city',
        parameters: {
            type: 'object',
            properties: { city: { type: 'string' }, unit: { type: 'string' } },
            required: ['city'],
        },
    },
};
const weatherToolAnthropic = {
    name: 'get_weather',
    description: 'Current weather for a city',
    input_schema: weatherToolOpenAI.function.parameters,
};
const userTurn = [{ role: 'user', content: 'Say hello.' }];
const toolTurn = [{ role: 'user', content: 'What is the weather in Paris?' }];

async function openaiChat() {
    const r = await openai.chat.completions.create({ model, messages: userTurn, max_tokens: 64 });
    return {
        text: r.choices[0].message.content,
        finish_reason: r.choices[0].finish_reason,
        usage: r.usage,
    };
}

async function openaiChatStream() {
    const stream = await openai.chat.completions.create({
        model, messages: userTurn, max_tokens: 64, stream: true,
        stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
        chunks += 1;
        for (const choice of chunk.choices) {
            text += choice.delta?.content ?? '';
            finish = choice.finish_reason ?? finish;
        }
        usage = chunk.usage ?? usage;
    }
    return { text, finish_reason: finish, usage, chunks };
}

async function openaiTool() {
    const r = await openai.chat.completions.create({
        model, messages: toolTurn, tools: [weatherToolOpenAI], tool_choice: 'auto',
    });
    const call = r.choices[0].message.tool_calls[0];
    return {
        id: call.id,
        name: call.function.name,
        arguments: JSON.parse(call.function.arguments),
        finish_reason: r.choices[0].finish_reason,
        usage: r.usage,
    };
}

async function openaiToolStream() {
    const stream = await openai.chat.completions.create({
        model, messages: toolTurn, tools: [weatherToolOpenAI], stream: true,
    });
    const calls = [];
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
        for (const choice of chunk.choices) {
            for (const d of choice.delta?.tool_calls ?? []) {
                calls[d.index] ??= { id: '', name: '', arguments: '' };
                calls[d.index].id += d.id ?? '';
                calls[d.index].name += d.function?.name ?? '';
                calls[d.index].arguments += d.function?.arguments ?? '';
            }
            finish = choice.finish_reason ?? finish;
        }
        usage = chunk.usage ?? usage;
    }
    return {
        count: calls.length,
        id: calls[0]?.id,
        name: calls[0]?.name,
        arguments: JSON.parse(calls[0]?.arguments ?? 'null'),
        finish_reason: finish,
        usage,
    };
}

async function openaiBadModel() {
    try {
        await openai.chat.completions.create({ model: 'no-such-model', messages: userTurn });
        return { threw: false };
    } catch (e) {
        return { threw: true, status: e.status, code: e.code ?? null, type: e.type ?? null,
                 class: e.constructor.name };
    }
}

async function anthropicMessage() {
    const r = await anthropic.messages.create({ model, max_tokens: 64, messages: userTurn });
    return {
        type: r.type,
        role: r.role,
        content: r.content,
        stop_reason: r.stop_reason,
        usage: { input_tokens: r.usage.input_tokens, output_tokens: r.usage.output_tokens },
    };
}

// Raw events through messages.create({stream:true}); text deltas accumulated by hand.
async function anthropicStream() {
    const stream = await anthropic.messages.create({
        model, max_tokens: 64, messages: userTurn, stream: true,
    });
    const events = [];
    let text = '';
    let stop = null;
    let usage = null;
    for await (const ev of stream) {
        events.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') {
            text += ev.delta.text;
        } else if (ev.type === 'message_delta') {
            stop = ev.delta.stop_reason;
            usage = ev.usage;
        }
    }
    return { events, text, stop_reason: stop, output_tokens: usage?.output_tokens ?? null };
}

// Tool use through the SDK's MessageStream helper (it accumulates input_json_delta itself),
// cross-checked against a manual accumulation of the partial_json pieces.
async function anthropicToolStream() {
    const stream = anthropic.messages.stream({
        model, max_tokens: 256, messages: toolTurn, tools: [weatherToolAnthropic],
        tool_choice: { type: 'auto' },
    });
    const events = [];
    let partial = '';
    let deltas = 0;
    stream.on('streamEvent', (ev) => {
        events.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') {
            partial += ev.delta.partial_json;
            deltas += 1;
        }
    });
    const msg = await stream.finalMessage();
    const tool = msg.content.find((b) => b.type === 'tool_use');
    return {
        events,
        input_json_deltas: deltas,
        manual_input: JSON.parse(partial),
        tool: tool ? { name: tool.name, input: tool.input, id_present: !!tool.id } : null,
        stop_reason: msg.stop_reason,
        output_tokens: msg.usage.output_tokens,
    };
}

async function anthropicTool() {
    const r = await anthropic.messages.create({
        model, max_tokens: 256, messages: toolTurn, tools: [weatherToolAnthropic],
    });
    const tool = r.content.find((b) => b.type === 'tool_use');
    return {
        tool: tool ? { name: tool.name, input: tool.input, id_present: !!tool.id } : null,
        stop_reason: r.stop_reason,
        usage: { input_tokens: r.usage.input_tokens, output_tokens: r.usage.output_tokens },
    };
}

async function anthropicCountTokens() {
    const r = await anthropic.messages.countTokens({
        model, messages: toolTurn, tools: [weatherToolAnthropic], system: 'Be brief.',
    });
    return { input_tokens: r.input_tokens };
}

async function anthropicBadModel() {
    try {
        await anthropic.messages.create({ model: 'no-such-model', max_tokens: 8,
                                          messages: userTurn });
        return { threw: false };
    } catch (e) {
        return { threw: true, status: e.status, body: e.error ?? null, class: e.constructor.name };
    }
}

const steps = {
    openai_chat: openaiChat,
    openai_chat_stream: openaiChatStream,
    openai_tool: openaiTool,
    openai_tool_stream: openaiToolStream,
    openai_bad_model: openaiBadModel,
    anthropic_message: anthropicMessage,
    anthropic_stream: anthropicStream,
    anthropic_tool: anthropicTool,
    anthropic_tool_stream: anthropicToolStream,
    anthropic_count_tokens: anthropicCountTokens,
    anthropic_bad_model: anthropicBadModel,
};

const result = {};
for (const [name, step] of Object.entries(steps)) {
    try {
        result[name] = await step();
    } catch (e) {
        console.error(`${name} failed: ${e.constructor.name}: ${e.message}`);
        process.stdout.write(JSON.stringify({ failed_step: name, partial: result }) + '\n');
        process.exit(1);
    }
}
process.stdout.write(JSON.stringify(result) + '\n');
