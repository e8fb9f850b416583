// A worker module for `converge run` (config key `agent`): every agent it starts claims tasks that
// need the "double" capability and reports { doubled: x * 2 }. No imports needed.
export default { capabilities: ["double"], onTask: (task) => ({ doubled: task.inputs.x * 2 }) };
