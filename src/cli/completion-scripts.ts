/**
 * The scripts `prismctl completion <shell>` prints. Each one only collects the words typed so far
 * and asks `prismctl complete -- <words>` for the candidates (src/cli/completion.ts), so the
 * scripts never need regenerating when commands change. A `:files` answer means "file names".
 */
export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

const BASH = `# prismctl completion for bash. Load it with:  source <(prismctl completion bash)
_prismctl_complete() {
  local IFS=$'\\n' line
  local -a lines
  lines=($(prismctl complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  COMPREPLY=()
  if [[ \${#lines[@]} -eq 1 && \${lines[0]} == ":files" ]]; then
    compopt -o default
    return 0
  fi
  for line in "\${lines[@]}"; do COMPREPLY+=("\${line%%$'\\t'*}"); done
}
complete -F _prismctl_complete prismctl
`;

const ZSH = `#compdef prismctl
# prismctl completion for zsh. Load it with:  source <(prismctl completion zsh)
_prismctl() {
  local -a lines candidates
  local line
  lines=("\${(@f)$(prismctl complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ \${#lines} -eq 1 && \${lines[1]} == ":files" ]]; then
    _files
    return
  fi
  for line in "\${lines[@]}"; do
    [[ -z $line ]] && continue
    if [[ $line == *$'\\t'* ]]; then
      candidates+=("\${\${line%%$'\\t'*}//:/\\\\:}:\${line#*$'\\t'}")
    else
      candidates+=("\${line//:/\\\\:}")
    fi
  done
  _describe 'prismctl' candidates
}
if (( $+functions[compdef] )); then compdef _prismctl prismctl; fi
`;

const FISH = `# prismctl completion for fish. Load it with:  prismctl completion fish | source
function __prismctl_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -a words (commandline -ct)
    set -l lines (prismctl complete -- $words 2>/dev/null)
    if test (count $lines) -eq 1 -a "$lines[1]" = ":files"
        __fish_complete_path (commandline -ct)
    else
        printf '%s\\n' $lines
    end
end
complete -c prismctl -f -a '(__prismctl_complete)'
`;

export const COMPLETION_SCRIPTS: Readonly<Record<CompletionShell, string>> = {
  bash: BASH,
  zsh: ZSH,
  fish: FISH,
};
